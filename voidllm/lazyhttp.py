"""httpx clients made at their first use (:class:`LazyClient`).

The hot paths do not use httpx (:mod:`voidllm.transport`), but a few rare paths do: health probes, the
admin connection test, single sign-on, OAuth token requests and the legacy transport of upstream MCP
servers. Loading httpx with httpcore costs every start about 50 ms and 2 MB, and most gateways never take
those paths, so the modules behind them import httpx inside the functions that use it, and the process's
shared clients are :class:`LazyClient` objects, made at the first request and closed only if they were.
``tests/test_startup.py`` checks that a gateway starts without loading httpx.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

import attrs

if TYPE_CHECKING:
    import httpx


@attrs.define(eq=False)
class LazyClient:
    """An ``httpx.AsyncClient`` made by ``make`` at the first :meth:`get`; :meth:`aclose` closes it if
    it was made."""

    make: Callable[[], httpx.AsyncClient]
    _client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self.make()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


Client: TypeAlias = "httpx.AsyncClient | LazyClient"
"""A client, or one made at its first use: what the rare paths take (:func:`resolved`)."""


def resolved(client: Client) -> httpx.AsyncClient:
    """The client itself; a :class:`LazyClient`'s, made now if it was not yet."""
    return client.get() if isinstance(client, LazyClient) else client


def plain_client() -> httpx.AsyncClient:
    """A client without redirects or the environment's settings (proxies, certificates): health probes,
    the admin connection test, the global single sign-on provider."""
    import httpx  # here, not at the top: see the module docstring

    return httpx.AsyncClient(follow_redirects=False, trust_env=False)
