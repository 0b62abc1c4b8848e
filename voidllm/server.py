"""The process lifecycle of ``voidllm serve`` (ARCHITECTURE.md section 1).

The lifetimes nest; each is opened before the one inside it and closed after it::

    serve(config, stop)
    └─ store              engine + migrations: opened first, closed last
       └─ probes' client, MCP upstream client   opened around the supervisor, so they outlive the
          │                                     services that use them (health-probes, mcp-health)
          └─ tracer       settings.otel: the process's tracer (voidllm.tracing), only while enabled
             └─ supervisor   the services, started in this order, stopped in reverse order
             ├─ span-export    finished spans to the OTLP collector in batches (settings.otel.enabled)
             ├─ usage-writer   usage events to the store in batches
             ├─ incident-writer  upstream failures, failovers and fallbacks to incidents in batches
             ├─ audit-writer   admin mutations to audit_logs in batches (settings.audit.enabled)
             ├─ usage-rollups  usage_hourly rebuilt by request time every settings.usage.rollup_interval
             ├─ retention      old log rows deleted in batches (when settings.retention has a period)
             ├─ key-cache      loaded before serving, reloaded every cache.key_ttl
             ├─ catalog, mcp-* models and aliases; the MCP registry and tool-call writer
             ├─ change-notices other processes' changes (store polling, or Redis pub/sub)
             ├─ rate-limits    without Redis: token counters seeded from usage_events, ended windows swept
             ├─ mcp-health     MCP server probes (settings.mcp.health)
             ├─ health-probes  per upstream and probe kind (settings.health_check); ready after a round
                               (with Redis both in one process, the holder of their lease, and shared)
             ├─ error-rates    with Redis: this process's attempt counts sent every 5 s (error rates)
             └─ proxy upstream client (the connection pool)
                └─ http nursery  hypercorn, started last, so traffic only arrives once all above is ready:
                                 one per port in dual-port mode (server.admin.port), both listening
                                 before the gateway is ready, both stopped by the same trigger

Shutdown, once ``stop`` is set (by the first SIGTERM/SIGINT in the CLI, or by a test):

1. draining begins: ``/readyz`` answers 503 and new ``/v1`` requests get 503 ``service_unavailable``;
2. in-flight requests get up to ``server.proxy.drain_timeout`` to finish; what is left is cancelled;
3. the HTTP server (each port's) stops (idle keep-alive connections are closed) and its nursery closes;
4. the proxy's upstream client closes its pooled connections;
5. the supervisor stops the services in reverse start order: the usage, incident and audit writers flush
   every row already accepted into the store;
6. the MCP upstream client and the health probes' client close, then the store.

No shield spans a lifetime: cleanup that must finish when cancelled (a writer's last flush, closing a client,
the store's close) is shielded and bounded where it happens.

The bootstrap banner is written to stderr once, after the server listens.
"""

from __future__ import annotations

import ctypes
import gc
import linecache
import logging
import math
import os
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

import attrs
import hypercorn.config
import sqlalchemy as sa
import trio
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from voidllm.admin.audit_writer import open_audit_channel, serve_audit_writer
from voidllm.admin.mcp_servers import mcp_changed
from voidllm.admin.services import (
    AuditSink,
    CodeModeRuntime,
    HealthRuntime,
    McpRuntime,
    NullAudit,
    Services,
)
from voidllm.auth.bootstrap import (
    BootstrapCredentials,
    BootstrapHint,
    BootstrapPlan,
    bootstrap,
    has_live_user,
)
from voidllm.auth.cache import KeyCache, serve_key_cache, store_lookup
from voidllm.auth.oidc import OidcClient
from voidllm.auth.throttle_redis import RedisLoginThrottle
from voidllm.bus import StoreBus, serve_store_notices
from voidllm.collector import release_full_collections
from voidllm.config import Config
from voidllm.config.settings import OtelConfig
from voidllm.crypto import Keyring
from voidllm.guard import OFF as GUARD_OFF
from voidllm.guard import detect
from voidllm.invalidations import Invalidations
from voidllm.lazyhttp import LazyClient, plain_client
from voidllm.limits.base import Limiter
from voidllm.limits.memory import MemoryLimiter, serve_memory_limiter
from voidllm.limits.redis import RedisLimiter
from voidllm.mcp.gateway.codemode import POOL_AVAILABLE, open_schema_queue, serve_schema_learner
from voidllm.mcp.health import McpHealthBoard, serve_mcp_health
from voidllm.mcp.registry import McpRegistry, McpRegistryLoader, serve_mcp_registry, sync_yaml_servers
from voidllm.mcp.tools_cache import fetch_tools
from voidllm.mcp.upstream.client import McpUpstreams
from voidllm.mcp.upstream.ssrf import guarded_transport
from voidllm.mcp.usage import open_tool_call_channel, serve_tool_call_writer
from voidllm.nursery import Supervisor, open_supervisor
from voidllm.proxy.demo import DemoTransport
from voidllm.proxy.handler import Proxy, ProxyLimits
from voidllm.redis.boards import RedisBoardShare, serve_shared_board
from voidllm.redis.bus import RedisBus, serve_invalidations
from voidllm.redis.client import RedisClient, serve_redis_client
from voidllm.redis.cooldown import RedisCooldowns
from voidllm.redis.lease import RedisLease
from voidllm.routing.breaker import BreakerRegistry, BreakerSettings
from voidllm.routing.catalog import Catalog
from voidllm.routing.catalog_store import CatalogLoader, serve_catalog, sync_yaml_models
from voidllm.routing.cooldown import CooldownRegistry
from voidllm.routing.error_rates import serve_error_rate_share
from voidllm.routing.health import PROBE_KINDS, HealthBoard, serve_health_probes
from voidllm.routing.latency import LatencyTracker
from voidllm.routing.registry import Registry
from voidllm.routing.strategy import Router
from voidllm.store.lease import AdvisoryLease, Always, FileLease, Lease, LeaseState, serve_lease
from voidllm.store.migrate import migrate
from voidllm.store.store import Store, open_store
from voidllm.store.tables import audit_logs, incidents, mcp_tool_calls, policies
from voidllm.store.tables import usage_events as usage_events_table
from voidllm.tracing import metrics as _span_export_metrics  # noqa: F401 - /metrics lists them also while off
from voidllm.transport.h11pool import H11Pool
from voidllm.usage.events import UsageEvent
from voidllm.usage.incidents import open_incident_channel, serve_incident_writer
from voidllm.usage.retention import serve_retention
from voidllm.usage.rollups import serve_rollups
from voidllm.usage.spill import SpillFile, spill_directory
from voidllm.usage.writer import open_usage_channel, serve_usage_writer
from voidllm.web.app import create_apps
from voidllm.web.disconnects import install as install_disconnect_notices
from voidllm.web.http1 import install as install_http1
from voidllm.web.state import AppState
from voidllm.web.writes import install as install_cancellable_writes

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

USAGE_WAIT_LIMIT = 10.0
"""With ``settings.usage.drop_on_full: false``, how long a request waits for room in the usage buffer."""
HTTP_GRACEFUL_TIMEOUT = 1.0
"""After the drain only idle keep-alive connections and answers already being written remain."""
CLOSE_GRACE = 5.0
"""Seconds closing one upstream client may take at shutdown (shielded, so it also runs when cancelled)."""
LEASE_TTL = 15.0
"""The longest life of a periodic job's lease between renewals (shorter for jobs that run more often)."""


class _Closeable(Protocol):
    async def aclose(self) -> None: ...


_C = TypeVar("_C", bound=_Closeable)


@attrs.frozen
class Running:
    """Handed out once the gateway listens: its shared state and the addresses it is bound to (``binds``
    the proxy port's, ``admin_binds`` the admin port's in dual-port mode)."""

    state: AppState
    binds: list[str]
    admin_binds: list[str] = attrs.field(factory=list)


@asynccontextmanager
async def open_migrated_store(config: Config) -> AsyncIterator[Store]:
    """Open the store and bring its schema to the latest migration; closed when the block is left."""
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
        yield store


async def bootstrap_from_config(
    store: Store, config: Config, keyring: Keyring
) -> BootstrapCredentials | BootstrapHint | None:
    """Bootstrap the store when ``settings.admin_key`` is set and it holds no key yet; without the admin key,
    the hint to print when the store has no user at all."""
    if not config.settings.admin_key:
        return None if await store.run(has_live_user) else BootstrapHint()
    boot = config.settings.bootstrap
    plan = BootstrapPlan(org_name=boot.org_name, org_slug=boot.org_slug, admin_email=boot.admin_email)
    return await bootstrap(store, keyring, plan)


async def prepare_store(config: Config) -> BootstrapCredentials | BootstrapHint | None:
    """Migrate and bootstrap the store once, before worker processes start (``server.workers`` > 1)."""
    db = config.database
    async with open_store(db.driver, db.dsn) as store:
        await migrate(store)
        keyring = Keyring.from_setting(config.settings.encryption_key)
        await store.run(partial(sync_yaml_models, models=config.models, keyring=keyring))
        await store.run(partial(sync_yaml_servers, servers=config.mcp_servers, keyring=keyring))
        return await bootstrap_from_config(store, config, keyring)


def hypercorn_config(config: Config, *, admin: bool = False) -> hypercorn.config.Config:
    """Hypercorn settings of the proxy port (``server.proxy``), or with ``admin`` of the admin port
    (``server.admin``: its address and, when on, its TLS files); the access log is off (it costs up to a
    third of throughput)."""
    proxy = config.server.proxy
    if admin:
        host, port = config.server.admin.listen_host(proxy), config.server.admin.port
    else:
        host, port = proxy.host, proxy.port
    hc = hypercorn.config.Config()
    hc.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    hc.keep_alive_timeout = proxy.idle_timeout
    # No hc.read_timeout: hypercorn applies it to every read of a connection, so it would cut responses that
    # stream longer than it (LLM streams, exports). Idle connections and slow headers are bounded by
    # keep_alive_timeout; request bodies by the proxy (read_timeout) and Quart (BODY_TIMEOUT).
    hc.graceful_timeout = HTTP_GRACEFUL_TIMEOUT
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.include_server_header = False
    tls = config.server.admin.tls
    if admin and tls.enabled:  # hypercorn then binds its sockets as secure ones
        hc.certfile, hc.keyfile = tls.cert, tls.key
        hc.alpn_protocols = ["http/1.1"]  # the same protocol as the plain port, whatever the browser offers
    return hc


class ListenError(Exception):
    """A port cannot be bound (in use, no permission, no such address); the message says where."""


@attrs.frozen
class Listeners:
    """The bound, listening sockets: the proxy port's and, in dual-port mode (``server.admin.port``), the
    admin port's (secure ones when ``server.admin.tls`` is on)."""

    proxy: hypercorn.config.Sockets | None  # None: hypercorn binds when it starts (in-process tests)
    admin: hypercorn.config.Sockets | None = None

    def close(self) -> None:
        for sockets in (self.proxy, self.admin):
            for sock in (sockets.secure_sockets + sockets.insecure_sockets) if sockets else ():
                sock.close()


def open_listeners(config: Config) -> Listeners:
    """Bind and listen on ``server.proxy`` (and ``server.admin`` in dual-port mode) now, before the store is
    opened, migrated or bootstrapped, so a port already in use is reported at once with its address and
    nothing else has happened.

    Raises:
        ListenError: an address cannot be bound.
    """
    proxy = _bind(
        hypercorn_config(config), "--port, VOIDLLM_PORT or server.proxy.port", config.server.proxy.port
    )
    if not config.server.admin.port:
        return Listeners(proxy)
    try:
        admin = _bind(hypercorn_config(config, admin=True), "server.admin.port", config.server.admin.port)
    except ListenError:
        Listeners(proxy).close()
        raise
    return Listeners(proxy, admin)


def _bind(hc: hypercorn.config.Config, setting: str, port: int) -> hypercorn.config.Sockets:
    try:
        sockets = hc.create_sockets()
    except OSError as exc:
        raise ListenError(
            f"cannot listen on {hc.bind[0]}: {exc.strerror or exc} (another process uses it? choose another "
            f"with {setting}; now {port})"
        ) from None
    for sock in sockets.secure_sockets + sockets.insecure_sockets:
        sock.listen(hc.backlog)
    return sockets


GC_YOUNG_THRESHOLD = 5000
"""Allocations (net, of objects the collector tracks) between two collections of the youngest generation, once
started; Python's default is 700."""


def forget_generated_sources() -> int:
    """Drop the source text attrs keeps in :mod:`linecache` for every method it generates (so that a traceback
    through one shows its line); returns how many were dropped. A ready gateway held about 590 of them, 2.1 MB
    of strings, for tracebacks it never prints with source (errors are logged by class name); freed before
    the heap is frozen, their memory is reused by the requests' objects instead of growing the heap (about
    1 MB off the peak RSS under load, issue 23). A traceback through a generated method still names it and
    its line."""
    generated = [name for name in linecache.cache if name.startswith("<attrs generated")]
    for name in generated:
        del linecache.cache[name]
    return len(generated)


MALLOC_ARENAS = 2
"""glibc malloc arenas of a gateway process (glibc's default: up to eight per core). Each thread that
allocates gets an arena of its own up to that limit, and memory freed in one is not reused by another; a
gateway's threads (the store's, Code Mode's) allocate little, so two arenas lose nothing and keep about 1 MB
less resident under load (issue 23). The same as setting ``MALLOC_ARENA_MAX=2``, which, when set, is left
to rule."""
_M_ARENA_MAX = -8  # mallopt's parameter number for the arena limit (glibc's malloc.h)


def _libc(name: str) -> Callable[..., int] | None:
    """The C library's function ``name``, or ``None`` where it has none (only glibc has ``mallopt``'s arena
    limit and ``malloc_trim``)."""
    try:
        function: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # pragma: no cover (not glibc)
        return None
    return function


def limit_malloc_arenas() -> int | None:
    """Limit glibc's malloc arenas to :data:`MALLOC_ARENAS` (``mallopt``, before this process starts any
    thread); the limit applied, or ``None`` where there is no glibc or ``MALLOC_ARENA_MAX`` is set."""
    mallopt = None if "MALLOC_ARENA_MAX" in os.environ else _libc("mallopt")
    if mallopt is None:
        return None
    return MALLOC_ARENAS if mallopt(_M_ARENA_MAX, MALLOC_ARENAS) == 1 else None


TRIM_INTERVAL_S = 10.0
"""How often a gateway process gives the free memory inside its malloc heaps back to the system."""


async def serve_memory_trim(
    *,
    trim: Callable[[int], int],
    every: float = TRIM_INTERVAL_S,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Call ``trim(0)`` (glibc's ``malloc_trim``) every ``every`` seconds until cancelled (the ``memory-trim``
    service of ``voidllm serve`` and its workers, on glibc).

    Python frees most of a request's memory, but a freed chunk in the middle of a malloc heap stays resident
    until the heap shrinks past it, which a long-lived allocation above it prevents: a gateway's heap grew
    about 0.8 MB a minute at 32 connections while its Python objects did not (tracemalloc, smaps). Trimming
    returns the free pages inside the heaps too (``madvise``): measured over a minute at 32 connections, RSS
    stayed at 91.6-92.4 MB instead of growing from 92.4 to 93.9, its peak 93.1 against 94.8 MB (issue 23).
    A trim took 0.28-0.41 ms of the event loop's thread; it runs there, because from another thread it would
    hold the main heap's lock just as long.
    """
    task_status.started()
    while True:
        await trio.sleep(every)
        trim(0)


def tune_gc_after_start(arenas: int | None = None) -> None:
    """Freeze what start-up made (modules, the app, caches: it lives as long as the process, so the collector
    never needs to walk it again, ``gc.freeze``), and collect the young generation after
    :data:`GC_YOUNG_THRESHOLD` allocations instead of 700.

    Measured with ``scripts/bench --otel``'s gateway at 32 connections (2 cores, load about 1.3): the
    collector took 145 to 170 µs of each proxied request's CPU, about 11 % (65 young collections per 1,000
    requests at 1.2 to 1.5 ms each, full ones walking every start-up object); with both changes under 1 µs,
    and 35 to 45 % more requests per second (629-707 -> 937-978). Request garbage is mostly freed by reference
    counting; cycles (trio's cancel scopes, exceptions with their tracebacks) wait a little longer.

    No full collection before the freeze: it walked all of start-up's 137,000 objects for 0.07 to 0.09 s of
    a 1.1 s start, to free 592 of them (85 KB: the command line's argparse parser, which start-up's young
    collections had promoted). With the full collections held back while the modules load
    (:mod:`voidllm.entry`) those few stay, frozen, for the process's life.

    ``arenas`` (what :func:`limit_malloc_arenas` applied) goes into the log line. First drops attrs'
    generated sources (:func:`forget_generated_sources`). Like the collector's settings,
    this is process-wide: so only ``voidllm serve`` does it, not a gateway embedded in another program.
    """
    forget_generated_sources()
    gc.freeze()
    release_full_collections(GC_YOUNG_THRESHOLD)  # and the hold of voidllm.entry, when it made one
    log.info(
        "heap frozen",
        extra={
            "objects": gc.get_freeze_count(),
            "young_threshold": GC_YOUNG_THRESHOLD,
            "thresholds": list(gc.get_threshold()),
            "malloc_arenas": arenas,
        },
    )


async def serve(
    config: Config,
    stop: trio.Event,
    *,
    banner_out: TextIO | None = None,
    listeners: Listeners | None = None,
    run_bootstrap: bool = True,
    tune_gc: bool = False,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the gateway until ``stop`` is set, then drain and shut down cleanly (see the module docstring).

    Args:
        listeners: listening sockets made by the caller (the CLI, or a parent process when
            ``server.workers`` > 1); else bind ``server.proxy`` (and ``server.admin``) here.
        run_bootstrap: whether this process may bootstrap the store (the parent does it for its workers).
        tune_gc: the process is the gateway's own (``voidllm serve``, a worker): its malloc arenas are
            limited at once (:func:`limit_malloc_arenas`) and, once started, its heap is frozen for the
            garbage collector (:func:`tune_gc_after_start`). Off for a gateway run inside another program,
            such as a test, whose objects it would freeze too.
    """
    arenas = limit_malloc_arenas() if tune_gc else None
    keyring = Keyring.from_setting(config.settings.encryption_key)
    registry = Registry.from_config(config.models)
    # The store is the outermost lifetime: opened first, closed last, after every service has stopped; the
    # health probes' client and the MCP upstream client are opened around the supervisor too, as the
    # health-probes and mcp-health services use them. Organisations' single sign-on providers get a client
    # of their own, whose connections follow the URL policy (voidllm.auth.oidc).
    sso = config.settings.sso
    async with (
        open_migrated_store(config) as store,
        _closing(LazyClient(plain_client)) as probe_client,
        _closing(LazyClient(partial(_org_sso_client, sso.allow_private_issuers))) as org_sso_client,
        _closing(McpUpstreams.from_settings(config.settings.mcp)) as mcp_upstreams,
        _tracing(config.settings.otel) as spans,
        open_supervisor() as supervisor,
    ):
        if spans is not None:  # first, so it stops last and exports what the others' shutdown traced
            await supervisor.start("span-export", spans)
        usage = config.settings.usage
        recorder, usage_events = open_usage_channel(usage.buffer_size)
        await supervisor.start(
            "usage-writer",
            partial(
                serve_usage_writer,
                store=store,
                receive=usage_events,
                # a quarter of the buffer per write: while one batch is being written (in a worker thread,
                # which receives nothing meanwhile) three quarters of the channel still take new events
                batch_size=max(1, usage.buffer_size // 4),
                flush_interval=usage.flush_interval,
                late_after=usage.rollup_lateness / 2,  # well inside the rollups' own window
                spill=_spill_file(config, usage_events_table, UsageEvent.to_row),
            ),
        )
        incident_recorder, incident_rows = open_incident_channel(usage.buffer_size)
        await supervisor.start(
            "incident-writer",
            partial(
                serve_incident_writer,
                store=store,
                receive=incident_rows,
                batch_size=max(1, usage.buffer_size // 4),
                flush_interval=usage.flush_interval,
                spill=_spill_file(config, incidents, attrs.asdict),
            ),
        )
        audit = await _start_audit_writer(supervisor, store, config)
        credentials = await bootstrap_from_config(store, config, keyring) if run_bootstrap else None
        keys = KeyCache(keyring.hmac_secret, lookup=store_lookup(store))
        await supervisor.start(
            "key-cache", partial(serve_key_cache, cache=keys, store=store, ttl=config.cache.key_ttl)
        )
        if run_bootstrap:  # else the parent process synced the config's models (prepare_store)
            await store.run(partial(sync_yaml_models, models=config.models, keyring=keyring))
        catalog = Catalog(registry)
        loader = CatalogLoader(catalog, store, keyring, yaml_models=registry.models)
        catalog_ttl = min(config.cache.model_ttl, config.cache.alias_ttl)
        await supervisor.start("catalog", partial(serve_catalog, loader=loader, ttl=catalog_ttl))
        services = Services(
            config=config, store=store, keyring=keyring, keys=keys, catalog=catalog, audit=audit
        )
        services.catalog_reload = loader.reload
        services.oidc = OidcClient(
            http=probe_client, org_http=org_sso_client, allow_private_issuers=sso.allow_private_issuers
        )
        await _start_mcp(supervisor, config, store, keyring, services, mcp_upstreams, sync=run_bootstrap)
        limiter, redis_client = await _start_limits(supervisor, config, store, services)
        await _start_usage_upkeep(supervisor, store, config, redis_client)
        if services.mcp is not None:
            await _start_mcp_health(supervisor, config, store, services.mcp, redis_client)
        await _prepare_guard(config, store)
        state = AppState(config=config, store=store, keys=keys, catalog=catalog, services=services)
        state.bootstrap_pending = not await store.run(has_live_user)
        # The proxy's connection pool closes after the HTTP server stopped and before the services stop;
        # demo URLs are answered in process, the rest go to the pool.
        async with _closing(DemoTransport(H11Pool())) as transport:
            board, latency = HealthBoard(), LatencyTracker()
            services.health = HealthRuntime(board=board, http_client=probe_client)
            probes: Callable[..., Awaitable[Any]] = partial(
                serve_health_probes,
                models=lambda: catalog.registry.models,
                settings=config.settings.health_check,
                client=probe_client,
                board=board,
                latency=latency,
            )
            checks = config.settings.health_check
            intervals = [
                getattr(checks, kind).interval for kind in PROBE_KINDS if getattr(checks, kind).enabled
            ]
            if redis_client is not None and intervals:
                probes = await _shared_board(
                    supervisor, store, config, redis_client, "model-health", probes, board, min(intervals)
                )
            await supervisor.start("health-probes", probes)
            router = Router(
                breakers=BreakerRegistry(BreakerSettings.from_config(config.settings.circuit_breaker)),
                cooldowns=CooldownRegistry(),
                latency=latency,
                health=board.status,
            )
            services.error_rates = router.error_rates
            if redis_client is not None:  # every process's attempts in every process's error rates
                router.error_rates.share(redis_client, config.redis.key_prefix)
                await supervisor.start(
                    "error-rates", partial(serve_error_rate_share, rates=router.error_rates)
                )
            proxy = Proxy(
                keys=keys,
                catalog=catalog,
                transport=transport,
                usage=recorder,
                limits=_limits(config),
                router=router,
                fallback_max_depth=config.settings.fallback_max_depth,
                usage_wait=None if usage.drop_on_full else USAGE_WAIT_LIMIT,
                limiter=limiter,
                completion_reserve=config.settings.limits.default_completion_reserve,
                incidents=incident_recorder,
                guard=config.settings.guard,
            )
            trim = _libc("malloc_trim") if tune_gc else None
            if trim is not None:
                await supervisor.start("memory-trim", partial(serve_memory_trim, trim=trim))
            apps = create_apps(state, proxy)
            http_stop = trio.Event()
            async with trio.open_nursery() as http:  # the HTTP server's own lifetime, inside the services'
                bound = listeners or Listeners(None, None)
                binds = await http.start(
                    _serve_http, apps.proxy_port, hypercorn_config(config), bound.proxy, http_stop
                )
                admin_binds: list[str] = []
                if apps.admin_port is not None:  # dual-port mode: both ports listen before readiness
                    admin_hc = hypercorn_config(config, admin=True)
                    admin_binds = await http.start(
                        _serve_http, apps.admin_port, admin_hc, bound.admin, http_stop
                    )
                if tune_gc:
                    tune_gc_after_start(arenas)
                state.ready = True
                log.info("listening", extra={"binds": binds, **_admin_extra(admin_binds)})
                if credentials is not None:
                    out = banner_out or sys.stderr
                    out.write(credentials.banner())
                    out.flush()
                task_status.started(Running(state, binds, admin_binds))
                await stop.wait()
                await _drain(state)
                http_stop.set()  # hypercorn closes the idle connections and returns
    log.info("shutdown complete")


async def _prepare_guard(config: Config, store: Store) -> None:
    """Compile the prompt guard's prefilter before serving when ``settings.guard`` or a stored policy (of an
    organisation, team, key or model) has a guard, so that no request pays for it; else it is built by the
    first scan, if one ever comes (:func:`voidllm.guard.detect.prepare`)."""
    if config.settings.guard != GUARD_OFF or await store.run(_has_stored_guard):
        detect.prepare()


def _has_stored_guard(conn: sa.Connection) -> bool:
    query = sa.select(policies.c.scope_id).where(policies.c.guard.is_not(None)).limit(1)
    return conn.execute(query).first() is not None


@asynccontextmanager
async def _closing(resource: _C) -> AsyncIterator[_C]:
    """Close ``resource`` when the block is left, also when cancelled (shielded, at most ``CLOSE_GRACE``)."""
    try:
        yield resource
    finally:
        with trio.move_on_after(CLOSE_GRACE, shield=True):
            await resource.aclose()


def _org_sso_client(allow_private: bool) -> httpx.AsyncClient:
    """The client of organisations' single sign-on providers: its connections follow the URL policy."""
    import httpx  # loaded at first use (voidllm.lazyhttp)

    transport = guarded_transport(allow_private)
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)


@asynccontextmanager
async def _tracing(settings: OtelConfig) -> AsyncIterator[Callable[..., Awaitable[None]] | None]:
    """While ``settings.otel.enabled``: this process's tracer for the block, and its export service (to
    start); else nothing (:mod:`voidllm.tracing`)."""
    if not settings.enabled:
        yield None
        return
    # The SDK and the OTLP exporter (with protobuf: about 10 MB) are loaded only when tracing is on.
    from voidllm.tracing.export import QueueingProcessor, build_exporter, open_tracing, serve_span_export

    processor = QueueingProcessor(settings.queue_size, settings.batch_size)
    exporter = build_exporter(settings)
    with open_tracing(settings, processor):
        yield partial(
            serve_span_export,
            processor=processor,
            exporter=exporter,
            interval=settings.export_interval,
            export_timeout=settings.export_timeout,
        )


async def _start_mcp(
    supervisor: Supervisor,
    config: Config,
    store: Store,
    keyring: Keyring,
    services: Services,
    upstreams: McpUpstreams,
    *,
    sync: bool,
) -> None:
    """``services.mcp``: the MCP registry (reloaded every ``cache.model_ttl`` and by ``reload`` after admin
    writes), the upstream client (``upstreams``, owned by the caller), the health service and the writer of
    proxied tool calls; with ``sync`` the config's ``mcp_servers`` are written into the store first."""
    if sync:
        await store.run(partial(sync_yaml_servers, servers=config.mcp_servers, keyring=keyring))
    loader = McpRegistryLoader(McpRegistry(), store, keyring)
    registry = await supervisor.start(
        "mcp-registry", partial(serve_mcp_registry, loader=loader, ttl=config.cache.model_ttl)
    )
    board = McpHealthBoard()
    services.mcp = McpRuntime(
        registry=registry,
        reload=loader.reload,
        upstreams=upstreams,
        health=board,
        changed=partial(mcp_changed, services),
    )
    usage = config.settings.usage
    tool_calls, tool_call_rows = open_tool_call_channel(usage.buffer_size)
    await supervisor.start(
        "mcp-tool-calls",
        partial(
            serve_tool_call_writer,
            store=store,
            receive=tool_call_rows,
            batch_size=max(1, usage.buffer_size // 4),
            flush_interval=usage.flush_interval,
            spill=_spill_file(config, mcp_tool_calls, attrs.asdict),
        ),
    )
    services.mcp.tool_calls = tool_calls
    if config.settings.mcp.code_mode.enabled:
        services.mcp.codemode = await _start_code_mode(supervisor, config, store, services)


async def _start_code_mode(
    supervisor: Supervisor, config: Config, store: Store, services: Services
) -> CodeModeRuntime:
    """The Code Mode sandbox (its module compiled, or loaded from the on-disk cache, on a worker thread) and
    the writer of learned output schemas."""
    from voidllm.codemode.sandbox import Sandbox  # wasmtime: loaded only when Code Mode is on

    settings = config.settings.mcp.code_mode
    sandbox = await trio.to_thread.run_sync(
        partial(
            Sandbox,
            memory_limit_mb=settings.memory_limit_mb,
            time_limit=settings.timeout,
            pool_size=settings.pool_size,
        )
    )
    POOL_AVAILABLE.set(settings.pool_size)
    queue, learned = open_schema_queue()
    await supervisor.start(
        "code-mode-schemas",
        partial(
            serve_schema_learner,
            store=store,
            changed=partial(mcp_changed, services),  # reloads the registry and publishes ``mcp``
            queue=queue,
            receive=learned,
        ),
    )
    return CodeModeRuntime(sandbox=sandbox, settings=settings, learn=queue.put)


async def _start_mcp_health(
    supervisor: Supervisor,
    config: Config,
    store: Store,
    mcp: McpRuntime,
    redis_client: RedisClient | None,
) -> None:
    """The MCP health probes (``settings.mcp.health``), in every process, or with Redis in the holder of the
    ``mcp-health`` lease only (:func:`_shared_board`)."""
    health = config.settings.mcp.health
    if not health.enabled:
        return
    probes: Callable[..., Awaitable[Any]] = partial(
        serve_mcp_health,
        registry=mcp.registry,
        prober=mcp.upstreams,
        board=mcp.health,
        interval=health.interval,
        on_tools=partial(fetch_tools, store, mcp.upstreams, changed=mcp.changed),
    )
    if redis_client is not None:
        probes = await _shared_board(
            supervisor, store, config, redis_client, "mcp-health", probes, mcp.health, health.interval
        )
    await supervisor.start("mcp-health", probes)


async def _shared_board(
    supervisor: Supervisor,
    store: Store,
    config: Config,
    redis_client: RedisClient,
    name: str,
    probes: Callable[..., Awaitable[Any]],
    board: HealthBoard | McpHealthBoard,
    interval: float,
) -> Callable[..., Awaitable[Any]]:
    """``probes`` run by the holder of the lease ``name`` only, its results shared through Redis every
    ``interval`` (kept three intervals) and read into ``board`` by every other process
    (:mod:`voidllm.redis.boards`)."""
    lease = await _start_lease(supervisor, store, config, redis_client, name, interval)
    share = RedisBoardShare(name, redis_client, config.redis.key_prefix, expiry=3 * interval)
    return partial(
        serve_shared_board,
        lease=lease,
        probe=probes,
        share=share,
        dump=board.entries,
        load=board.load,
        every=interval,
    )


async def _start_audit_writer(supervisor: Supervisor, store: Store, config: Config) -> AuditSink:
    """Start the audit writer (before the HTTP server, so it flushes after the last request) if enabled."""
    audit = config.settings.audit
    if not audit.enabled:
        return NullAudit()
    sink, receive = open_audit_channel(audit.buffer_size)
    await supervisor.start(
        "audit-writer",
        partial(
            serve_audit_writer,
            store=store,
            receive=receive,
            batch_size=max(1, audit.buffer_size // 4),
            flush_interval=audit.flush_interval,
            spill=_spill_file(config, audit_logs, attrs.asdict),
        ),
    )
    return sink


def _spill_file(config: Config, table: sa.Table, row_of: Callable[[Any], dict[str, Any]]) -> SpillFile[Any]:
    """The spill file of one batch writer: ``settings.usage.spill_dir`` (or its default), ``spill_max_mb``."""
    usage, database = config.settings.usage, config.database
    directory = spill_directory(usage.spill_dir, driver=database.driver, dsn=database.dsn)
    return SpillFile(directory, table, row_of, usage.spill_max_mb * 1024 * 1024)


async def _start_usage_upkeep(
    supervisor: Supervisor, store: Store, config: Config, redis_client: RedisClient | None
) -> None:
    """Hourly rollups (ready after their first run) and, when a table has a retention period, retention
    (ready at once; its first run starts in the background); each runs in one process of all those sharing
    the store, the holder of its lease (:func:`_start_lease`)."""
    usage = config.settings.usage
    rollups = await _start_lease(
        supervisor, store, config, redis_client, "usage-rollups", usage.rollup_interval
    )
    await supervisor.start(
        "usage-rollups",
        partial(
            serve_rollups,
            store=store,
            interval=usage.rollup_interval,
            lateness=usage.rollup_lateness,
            lease=rollups,
        ),
    )
    retention = config.settings.retention
    if retention.enabled:
        held = await _start_lease(supervisor, store, config, redis_client, "retention", retention.interval)
        await supervisor.start(
            "retention", partial(serve_retention, store=store, config=retention, lease=held)
        )


async def _start_lease(
    supervisor: Supervisor,
    store: Store,
    config: Config,
    redis_client: RedisClient | None,
    name: str,
    interval: float,
) -> LeaseState:
    """The lease of the periodic job ``name`` (:mod:`voidllm.store.lease`): in Redis when it is on, else a
    PostgreSQL advisory lock, else (SQLite, one host) a lock file beside the database. It is renewed every
    third of its ``ttl``, which is half the job's ``interval`` (at most 15 s), so a dead holder's job is taken
    over within one interval."""
    ttl = min(interval / 2, LEASE_TTL)
    lease = _lease(store, config, redis_client, name, ttl)
    state = LeaseState()
    await supervisor.start(
        f"lease-{name}", partial(serve_lease, lease=lease, state=state, renew_every=ttl / 3)
    )
    return state


def _lease(store: Store, config: Config, redis_client: RedisClient | None, name: str, ttl: float) -> Lease:
    """The backend of :func:`_start_lease`."""
    database = config.database
    if redis_client is not None:
        return RedisLease(name, redis_client, config.redis.key_prefix, ttl)
    if database.driver == "postgres":
        return AdvisoryLease(name, store)
    if database.dsn and ":memory:" not in database.dsn and not database.dsn.startswith("file:"):
        return FileLease(name, Path(database.dsn).expanduser().resolve().with_name(f".voidllm-{name}.lease"))
    return Always(name)


async def _start_limits(
    supervisor: Supervisor, config: Config, store: Store, services: Services
) -> tuple[Limiter, RedisClient | None]:
    """The rate limiter and the change bus (``services.bus``) with its receiver: over Redis, or else over the
    store's ``change_notices``; with Redis also the login throttle (``services.throttle``) and the cooldowns
    (``services.cooldowns``) shared through Redis (without, both are kept in this process's memory)."""
    if not config.redis.enabled:
        memory = MemoryLimiter()
        instance_id = secrets.token_hex(8)
        services.bus = StoreBus(store, instance_id)
        invalidations = Invalidations(services.keys, store, services)
        await supervisor.start(
            "change-notices",
            partial(_serve_store_changes, store=store, instance_id=instance_id, invalidations=invalidations),
        )
        await supervisor.start("rate-limits", partial(serve_memory_limiter, limiter=memory, store=store))
        return memory, None
    redis = config.redis
    client = await supervisor.start(
        "redis",
        partial(serve_redis_client, url=redis.url, command_timeout=redis.timeout, pool_size=redis.pool_size),
    )
    limiter = RedisLimiter(
        client,
        redis.key_prefix,
        on_error=redis.on_error,
        reservation_ttl=config.settings.limits.reservation_ttl,
    )
    instance_id = secrets.token_hex(8)
    services.bus = RedisBus(client, redis.key_prefix, instance_id)
    services.throttle = RedisLoginThrottle(client, redis.key_prefix)
    services.cooldowns = RedisCooldowns(client, redis.key_prefix)
    invalidations = Invalidations(services.keys, store, services)
    await supervisor.start(
        "change-notices",
        partial(
            serve_invalidations,
            client=client,
            prefix=redis.key_prefix,
            instance_id=instance_id,
            invalidations=invalidations,
            on_connected=partial(limiter.seed_from, store),
        ),
    )
    return limiter, client


async def _serve_store_changes(
    *,
    store: Store,
    instance_id: str,
    invalidations: Invalidations,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Without Redis: other processes' change notices from the store, applied by ``invalidations``."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(invalidations.serve)
        await nursery.start(
            partial(serve_store_notices, store=store, sender=instance_id, notice=invalidations.notice)
        )
        task_status.started()


def _limits(config: Config) -> ProxyLimits:
    proxy = config.server.proxy
    return ProxyLimits(
        max_request_body=proxy.max_request_body,
        max_response_body=proxy.max_response_body,
        max_stream_duration=proxy.max_stream_duration,
        request_timeout=proxy.write_timeout or proxy.max_stream_duration,
        read_timeout=proxy.read_timeout or math.inf,
    )


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


def _admin_extra(admin_binds: list[str]) -> dict[str, list[str]]:
    return {"admin_binds": admin_binds} if admin_binds else {}


async def _serve_http(
    app: Any,
    hc: hypercorn.config.Config,
    sockets: hypercorn.config.Sockets | None,
    stop: trio.Event,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Hypercorn with settings ``hc`` on ``sockets`` (or its own binds) until ``stop`` is set; reports the
    bound addresses. Each port has its own (dual-port mode); they run in serve()'s HTTP nursery."""
    install_cancellable_writes()  # a client that reads nothing is cut at its request's deadline
    install_http1()  # "HTTP/1.1 429 Too Many Requests", and a buffered answer in one write
    install_disconnect_notices()  # a request learns of its client leaving without a task of its own
    await worker_serve(
        wrap_app(app, 0, "asgi"),
        hc,
        sockets=sockets,
        shutdown_trigger=stop.wait,
        task_status=task_status,
    )
