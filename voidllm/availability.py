"""Settings this version accepts in ``voidllm.yaml`` but cannot act on yet.

The configuration schema is the whole product's (docs/reference/behaviour.md 2), so a file written for a later
version still validates. A setting that asks for a feature this version does not have must not be silently
ignored (a team would believe it is on), so ``voidllm serve`` refuses to start and names each such key.
Defaults are always fine: only a setting that turns such a feature on is refused.
"""

from __future__ import annotations

from voidllm.config import Config, ConfigError


def unavailable_settings(config: Config) -> list[str]:
    """``key.path: reason`` for every setting that needs a feature this version does not have."""
    problems = []
    if config.settings.mcp.code_mode.enabled:
        problems.append("settings.mcp.code_mode.enabled: Code Mode is not in this version yet")
    return problems


def check_available(config: Config) -> None:
    """Raise :class:`ConfigError` listing every setting this version cannot honour."""
    problems = unavailable_settings(config)
    if problems:
        raise ConfigError(problems, source="this version")
