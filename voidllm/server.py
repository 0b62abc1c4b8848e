"""The process lifecycle of ``voidllm serve`` (DESIGN section 1).

::

    serve(config, stop)
    └─ supervisor nursery
       ├─ store          engine + migrations, ready first
       ├─ key-cache      loaded before serving, reloaded every cache.key_ttl
       └─ http           hypercorn.trio.serve, started last, so traffic only arrives once all of the above is ready

Shutdown, once ``stop`` is set (by the first SIGTERM/SIGINT in the CLI, or by a test):

1. draining begins: ``/readyz`` answers 503 and new ``/v1`` requests get 503 ``service_unavailable``;
2. in-flight requests get up to ``server.proxy.drain_timeout`` to finish; what is left is cancelled;
3. the HTTP server stops (idle keep-alive connections are closed);
4. the supervisor stops the services in reverse start order (buffers flush into the store before it closes).

The bootstrap banner is written to stderr once, after the server listens.
"""

from __future__ import annotations

import logging
import sys
from functools import partial
from typing import Any, TextIO

import attrs
import hypercorn.config
import hypercorn.trio
import trio

from voidllm.auth.bootstrap import BootstrapPlan, bootstrap
from voidllm.auth.cache import KeyCache, serve_key_cache
from voidllm.config import Config
from voidllm.crypto import Keyring
from voidllm.nursery import open_supervisor
from voidllm.store.migrate import migrate
from voidllm.store.store import Store, open_store
from voidllm.web.app import create_app
from voidllm.web.state import AppState

log = logging.getLogger(__name__)

HTTP_GRACEFUL_TIMEOUT = 5.0


@attrs.frozen
class Running:
    """Handed out once the gateway listens: its shared state and the addresses it is bound to."""

    state: AppState
    binds: list[str]


async def serve_store(
    config: Config, *, task_status: trio.TaskStatus[Store] = trio.TASK_STATUS_IGNORED
) -> None:
    """Open the store, bring its schema to the latest migration, and hold it open until cancelled."""
    db = config.database
    async with open_store(
        db.driver,
        db.dsn,
        max_open_conns=db.max_open_conns,
        max_idle_conns=db.max_idle_conns,
        conn_max_lifetime=db.conn_max_lifetime,
    ) as store:
        revision = await migrate(store)
        log.info("store ready", extra={"driver": db.driver, "schema_revision": revision})
        task_status.started(store)
        await trio.sleep_forever()


def hypercorn_config(config: Config) -> hypercorn.config.Config:
    """Hypercorn settings from ``server.proxy``; the access log is off (it costs up to a third of throughput)."""
    proxy = config.server.proxy
    host = f"[{proxy.host}]" if ":" in proxy.host else proxy.host
    hc = hypercorn.config.Config()
    hc.bind = [f"{host}:{proxy.port}"]
    hc.keep_alive_timeout = proxy.idle_timeout
    hc.read_timeout = proxy.read_timeout
    hc.graceful_timeout = HTTP_GRACEFUL_TIMEOUT
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.include_server_header = False
    return hc


async def serve(
    config: Config,
    stop: trio.Event,
    *,
    banner_out: TextIO | None = None,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the gateway until ``stop`` is set, then drain and shut down cleanly (see the module docstring)."""
    keyring = Keyring.from_setting(config.settings.encryption_key)
    async with open_supervisor() as supervisor:
        store: Store = await supervisor.start("store", partial(serve_store, config))
        credentials = None
        if config.settings.admin_key:
            boot = config.settings.bootstrap
            plan = BootstrapPlan(org_name=boot.org_name, org_slug=boot.org_slug, admin_email=boot.admin_email)
            credentials = await bootstrap(store, keyring, plan)
        keys = KeyCache(keyring.hmac_secret)
        await supervisor.start(
            "key-cache", partial(serve_key_cache, cache=keys, store=store, ttl=config.cache.key_ttl)
        )
        state = AppState(config=config, store=store, keys=keys)
        http_stop, http_done = trio.Event(), trio.Event()
        binds = await supervisor.nursery.start(_serve_http, create_app(state), config, http_stop, http_done)
        state.ready = True
        log.info("listening", extra={"binds": binds})
        if credentials is not None:
            out = banner_out or sys.stderr
            out.write(credentials.banner())
            out.flush()
        task_status.started(Running(state, binds))
        await stop.wait()
        await _drain(state)
        http_stop.set()
        await http_done.wait()
    log.info("shutdown complete")


async def _drain(state: AppState) -> None:
    timeout = state.config.server.proxy.drain_timeout
    state.drain.start_draining()
    log.info("draining", extra={"inflight": state.drain.inflight, "drain_timeout_s": timeout})
    with trio.move_on_after(timeout) as waited:
        await state.drain.wait_idle()
    if waited.cancelled_caught:
        log.warning("drain timeout reached; cancelling requests", extra={"inflight": state.drain.inflight})
        state.drain.cancel_all()
        await state.drain.wait_idle()


async def _serve_http(
    app: Any,
    config: Config,
    stop: trio.Event,
    done: trio.Event,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    try:
        await hypercorn.trio.serve(app, hypercorn_config(config), shutdown_trigger=stop.wait, task_status=task_status)
    finally:
        done.set()
