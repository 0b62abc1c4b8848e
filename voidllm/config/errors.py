"""The one error the config package raises."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """The configuration cannot be used; ``problems`` lists every reason, one ``key.path: message`` each.

    ``str()`` is the problems, one per line. ``source`` names where the configuration came from (a file path,
    or ``"environment"`` when no file was found), for the caller's headline.
    """

    def __init__(self, problems: Iterable[str], *, source: str | None = None) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        self.source = source
        super().__init__("\n".join(self.problems))
