"""Health probes of the registered MCP servers (docs/reference/behaviour.md 8.5) and the board
``GET /mcp-servers/health`` reads.

:func:`serve_mcp_health` probes every active external server of the running
:class:`~voidllm.mcp.registry.McpRegistry` at once, then every ``settings.mcp.health.interval`` (60 s by
default), with at most :data:`MAX_CONCURRENT_PROBES` probes in flight, each bounded by a
:data:`PROBE_TIMEOUT` cancel scope. A probe is the upstream client's ``probe(server)`` (``initialize`` and
``tools/list``): ``ok`` is healthy, with its latency and tool count, anything else unhealthy with a short
error. After a successful probe ``on_tools(server)`` runs (the server wires it to
:func:`voidllm.mcp.tools_cache.fetch_tools`, which replaces the server's cached tool list). The built-in
server is not probed (it is served in-process and always healthy).

Servers that left the registry (deleted, deactivated) are dropped from the board and from the gauges at the
next round. Metrics: ``voidllm_mcp_server_health_status{server,alias}`` 1 healthy / 0 unhealthy and
``voidllm_mcp_server_health_latency_seconds{server,alias}`` of the latest successful probe; ``server`` is the
server's display name.

With ``redis.enabled`` one process probes, the holder of the ``mcp-health`` lease, and every other process
loads the holder's reports into its board (:meth:`McpHealthBoard.entries`, :meth:`McpHealthBoard.load`,
:mod:`voidllm.redis.boards`); without Redis every process probes on its own.

Errors are reduced to what the prober reports (short, fixed strings of the client) and never include a
secret; a prober that raises counts as ``probe error``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
import trio
from prometheus_client import Gauge

from voidllm.mcp.registry import McpRegistry, McpServerEntry
from voidllm.metrics import REGISTRY

log = logging.getLogger(__name__)

__all__ = [
    "MAX_CONCURRENT_PROBES",
    "MCP_HEALTH_LATENCY",
    "MCP_HEALTH_STATUS",
    "PROBE_TIMEOUT",
    "McpHealthBoard",
    "McpHealthReport",
    "Prober",
    "probe_all",
    "serve_mcp_health",
]

MAX_CONCURRENT_PROBES = 5
PROBE_TIMEOUT = 10.0

MCP_HEALTH_STATUS = Gauge(
    "voidllm_mcp_server_health_status",
    "Probed health per MCP server: 1 healthy, 0 unhealthy.",
    ["server", "alias"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # the latest probe's, whichever process probed
)
MCP_HEALTH_LATENCY = Gauge(
    "voidllm_mcp_server_health_latency_seconds",
    "Latency of the latest successful health probe per MCP server.",
    ["server", "alias"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # the latest probe's, whichever process probed
)


class Prober(Protocol):
    """The part of ``voidllm.mcp.upstream.client.McpUpstreams`` the health service and the admin use cases
    need."""

    async def probe(self, server: Any) -> Any:
        """``ProbeResult(ok, tools, error, legacy_sse)``."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@attrs.frozen
class McpHealthReport:
    """The latest probe of one server; ``status`` is ``healthy``, ``unhealthy`` or ``unknown`` (never
    probed)."""

    server_id: str
    name: str
    alias: str
    status: str = "unknown"
    latency_ms: int | None = None
    tool_count: int | None = None
    last_error: str | None = None
    checked_at: dt.datetime | None = None


@attrs.define(eq=False)
class McpHealthBoard:
    """The current :class:`McpHealthReport` per server id, kept up to date by :func:`serve_mcp_health`."""

    clock: Callable[[], dt.datetime] = _utcnow
    _reports: dict[str, McpHealthReport] = attrs.field(factory=dict, init=False)

    def report(self, server: McpServerEntry) -> McpHealthReport:
        return self._reports.get(server.id) or McpHealthReport(server.id, server.name, server.alias)

    def reports(self) -> tuple[McpHealthReport, ...]:
        return tuple(self._reports[key] for key in sorted(self._reports))

    def record(
        self,
        server: McpServerEntry,
        *,
        ok: bool,
        latency: float | None,
        tool_count: int | None,
        error: str | None,
    ) -> McpHealthReport:
        """Store one probe result and update the gauges; a change of status is logged."""
        previous = self._reports.get(server.id)
        status = "healthy" if ok else "unhealthy"
        report = McpHealthReport(
            server.id,
            server.name,
            server.alias,
            status,
            latency_ms=None if latency is None else max(1, round(latency * 1000)),
            tool_count=tool_count,
            last_error=error,
            checked_at=self.clock(),
        )
        if previous is not None and previous.alias != server.alias:
            self._unlabel(previous)
        self._reports[server.id] = report
        MCP_HEALTH_STATUS.labels(server=server.name, alias=server.alias).set(1.0 if ok else 0.0)
        if latency is not None:
            MCP_HEALTH_LATENCY.labels(server=server.name, alias=server.alias).set(latency)
        if previous is None or previous.status != status:
            log.info(
                "MCP server health changed", extra={"server": server.alias, "status": status, "error": error}
            )
        return report

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every probed report as JSON-ready metadata (:mod:`voidllm.redis.boards` shares them)."""
        return {
            report.server_id: {
                **attrs.asdict(report, filter=lambda field, _: field.name != "checked_at"),
                "checked_at": report.checked_at.isoformat(),
            }
            for report in self._reports.values()
            if report.checked_at is not None
        }

    def load(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the reports with ``entries`` (another process's probes, read by
        :func:`voidllm.redis.boards.serve_shared_board`); servers not in them go back to ``unknown``."""
        known = set(attrs.fields_dict(McpHealthReport)) - {"server_id", "checked_at"}
        reports = {}
        for server_id, entry in entries.items():
            fields = {key: value for key, value in entry.items() if key in known}
            try:  # another gateway version may write other fields: an entry this one cannot read is unknown
                checked = dt.datetime.fromisoformat(entry["checked_at"])
                reports[server_id] = McpHealthReport(server_id=server_id, checked_at=checked, **fields)
            except (KeyError, TypeError, ValueError):
                continue
        for server_id, previous in self._reports.items():
            if server_id not in reports or reports[server_id].alias != previous.alias:
                self._unlabel(previous)
        for report in reports.values():
            MCP_HEALTH_STATUS.labels(server=report.name, alias=report.alias).set(
                1.0 if report.status == "healthy" else 0.0
            )
            if report.latency_ms is not None:
                MCP_HEALTH_LATENCY.labels(server=report.name, alias=report.alias).set(
                    report.latency_ms / 1000
                )
        self._reports = reports

    def keep_only(self, server_ids: set[str]) -> None:
        """Forget the servers not in ``server_ids`` (deleted or deactivated)."""
        for server_id in [key for key in self._reports if key not in server_ids]:
            self._unlabel(self._reports.pop(server_id))

    @staticmethod
    def _unlabel(report: McpHealthReport) -> None:
        for gauge in (MCP_HEALTH_STATUS, MCP_HEALTH_LATENCY):
            try:
                gauge.remove(report.name, report.alias)
            except KeyError:
                pass


OnTools = Callable[[McpServerEntry], Awaitable[Any]]


async def probe_all(
    servers: Sequence[McpServerEntry],
    *,
    prober: Prober,
    board: McpHealthBoard,
    on_tools: OnTools | None = None,
) -> None:
    """Probe ``servers`` concurrently (at most :data:`MAX_CONCURRENT_PROBES` at a time) into ``board``."""
    limiter = trio.CapacityLimiter(MAX_CONCURRENT_PROBES)
    board.keep_only({server.id for server in servers})
    async with trio.open_nursery() as nursery:
        for server in servers:
            nursery.start_soon(_probe_one, server, prober, board, on_tools, limiter)


async def _probe_one(
    server: McpServerEntry,
    prober: Prober,
    board: McpHealthBoard,
    on_tools: OnTools | None,
    limiter: trio.CapacityLimiter,
) -> None:
    async with limiter:
        started = trio.current_time()
        result: Any = None
        error = "request timeout"
        with trio.move_on_after(PROBE_TIMEOUT):
            try:
                result = await prober.probe(server)
            except Exception as exc:  # a broken prober must not stop the other probes
                log.warning(
                    "MCP health probe raised",
                    extra={"server": server.alias, "error_type": type(exc).__name__},
                )
                error = "probe error"
        elapsed = trio.current_time() - started
    if result is None:
        board.record(server, ok=False, latency=None, tool_count=None, error=error)
        return
    board.record(
        server,
        ok=bool(result.ok),
        latency=elapsed if result.ok else None,
        tool_count=result.tools if result.ok else None,
        error=None if result.ok else result.error,
    )
    if result.ok and on_tools is not None:
        try:
            await on_tools(server)
        except Exception as exc:  # the cache catches up at the next probe
            log.warning(
                "MCP tool list not cached", extra={"server": server.alias, "error_type": type(exc).__name__}
            )


async def serve_mcp_health(
    *,
    registry: McpRegistry,
    prober: Prober,
    board: McpHealthBoard,
    interval: float,
    on_tools: OnTools | None = None,
    task_status: trio.TaskStatus[McpHealthBoard] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Report ready at once, then probe every active server each ``interval`` seconds (from the start of one
    round to the next; a round longer than ``interval`` is followed at once by the next) until cancelled."""
    task_status.started(board)
    while True:
        deadline = trio.current_time() + interval
        await probe_all(registry.active(), prober=prober, board=board, on_tools=on_tools)
        await trio.sleep_until(deadline)
