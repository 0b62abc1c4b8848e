"""What the HTTP layer needs from the running process, handed to the app once at assembly."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import attrs
from quart import current_app

from voidllm import __version__
from voidllm.auth.cache import KeyCache
from voidllm.nursery import DrainTracker
from voidllm.routing.catalog import Catalog
from voidllm.routing.registry import Registry

if TYPE_CHECKING:
    from voidllm.admin.services import Services
    from voidllm.config import Config
    from voidllm.store.store import Store


@attrs.define(eq=False)
class AppState:
    """The process's shared services as the web layer sees them."""

    config: Config
    store: Store
    keys: KeyCache
    catalog: Catalog
    services: Services | None = None
    drain: DrainTracker = attrs.field(factory=DrainTracker)
    ready: bool = False
    bootstrap_pending: bool = False  # no user in the store yet: /readyz says so until one exists
    version: str = __version__
    started_at: float = attrs.field(factory=time.monotonic)

    @property
    def registry(self) -> Registry:
        return self.catalog.registry

    def uptime_seconds(self) -> int:
        return int(time.monotonic() - self.started_at)


def app_state() -> AppState:
    """The :class:`AppState` of the app serving the current request."""
    state: AppState = current_app.extensions["voidllm"]
    return state
