"""The playground tunnel (docs/reference/behaviour.md 1.4): ``ANY /api/v1/playground/<rest>`` is
``/v1/<rest>``, answered in process by the same proxy and routes, so the web UI always has a same-origin
route to the models.

Authentication: an explicit ``Authorization`` or ``X-Api-Key`` header (the playground's API-key override: no
CSRF needed), or else the browser's session cookie, CSRF-checked for anything but GET/HEAD/OPTIONS
(:func:`voidllm.web.browser.authenticate_cookie`); the tunnel then presents the session key to the proxy as a
Bearer key. The ``Cookie`` header itself never goes further, nor does ``Origin``: the playground is the
gateway's own page, so a key's allowed origins (request policy, :mod:`voidllm.request_policy`) do not apply
to it; its parameter and header rules do. Refusals come in the envelope the proxy uses.

Streams are relayed exactly as on ``/v1`` (Server-Sent Events, event by event), under the same drain
tracking (:class:`~voidllm.web.edge.Edge`). Their duration is capped as in the reference, which bounds them
below the hosting server's write timeout: ``write_timeout - 15 s``, or half of ``write_timeout`` when that is
not positive, never above ``max_stream_duration``; no cap when ``write_timeout`` is 0 (:func:`stream_cap`).
A model's own ``timeout`` still bounds its requests as it does on ``/v1``.

Nothing of the conversation is logged or stored here; the proxy records its usual metadata-only usage row.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs

from voidllm.asgi import SCOPE_KEY, send_error
from voidllm.errors import BadRequestError, GatewayError
from voidllm.web.browser import BrowserPolicy, authenticate_cookie

_NOT_TUNNELLED = frozenset({b"cookie", b"origin"})

if TYPE_CHECKING:
    from voidllm.auth.cache import KeyCache

PREFIX = "/api/v1/playground/"
MARGIN = 15.0
"""Seconds a tunnelled stream ends before the write timeout (docs/reference/behaviour.md 1.4)."""


def stream_cap(write_timeout: float) -> float:
    """The longest a tunnelled stream may run (module docstring); ``math.inf`` for no cap."""
    if write_timeout <= 0:
        return math.inf
    capped = write_timeout - MARGIN
    return capped if capped > 0 else write_timeout / 2


def capped_proxy(proxy: Any, write_timeout: float) -> Any:
    """``proxy`` sharing everything (keys, catalog, transport, limits, usage), with streams capped."""
    cap = stream_cap(write_timeout)
    if proxy is None or cap >= proxy.limits.max_stream_duration:
        return proxy
    return attrs.evolve(proxy, limits=attrs.evolve(proxy.limits, max_stream_duration=cap))


@attrs.define(eq=False)
class Playground:
    """The ASGI app of the tunnel; ``proxy`` answers ``POST`` of ``proxy_paths``, ``app`` the rest."""

    keys: KeyCache
    policy: BrowserPolicy
    proxy: Any
    app: Any
    proxy_paths: frozenset[str]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            inner = await self.tunnelled(scope)
        except GatewayError as exc:
            await send_error(
                send, exc.status, exc.code, exc.message, scope.get(SCOPE_KEY), exc.headers, param=exc.param
            )
            return
        proxied = inner["method"] == "POST" and inner["path"] in self.proxy_paths
        await (self.proxy if proxied else self.app)(inner, receive, send)

    async def tunnelled(self, scope: dict[str, Any]) -> dict[str, Any]:
        """The request as the proxy sees it: path ``/v1/<rest>``, the caller's key in ``Authorization``, no
        cookies.

        Raises:
            BadRequestError: ``rest`` has a ``.`` or ``..`` segment.
            AuthenticationError, CsrfError: see :func:`~voidllm.web.browser.authenticate_cookie`.
        """
        rest = scope["path"][len(PREFIX) :]
        if any(part in (".", "..") for part in rest.split("/")):
            raise BadRequestError("unsupported API endpoint")
        headers = [(name, value) for name, value in scope["headers"] if name not in _NOT_TUNNELLED]
        session = await authenticate_cookie(scope, self.keys, self.policy)
        if session is not None:
            headers.append((b"authorization", b"Bearer " + session[0].encode("latin-1")))
        path = "/v1/" + rest
        return {**scope, "path": path, "raw_path": path.encode("latin-1"), "headers": headers}
