"""Upstream health probes (docs/reference/behaviour.md 6.4) and the board the router reads their results from.

Three probe kinds, each off unless enabled in ``settings.health_check`` and each on its own interval:

- ``health``: GET ``scheme://host[:port]`` of the upstream's ``base_url`` (no path). Any HTTP answer, 404 or
  500 included, counts as up; only connection errors and timeouts fail. Its latency (at least 1 ms) goes to
  the report, the latency gauge and :meth:`LatencyTracker.observe_probe`.
- ``models``: GET ``<base_url>/models``; a 2xx answer is required.
- ``functional``: a billable one-token request by model type: chat → ``/chat/completions``, completion →
  ``/completions``, embedding → ``/embeddings``. Other types (reranking, image, audio, tts) are skipped and
  count as up. A warning says so at startup.

Every request carries the provider's credential headers
(:func:`voidllm.providers.registry.credential_headers`, as the admin connection test does), follows no
redirects, and is bounded by a 10 s cancel scope (:data:`PROBE_TIMEOUT`). Only the status code is looked at:
the body is never read, and errors are reduced to short fixed strings (``connection refused``, ``request
timeout``, ``dns resolution failed``, ``tls error``, ``connection failed``, ``http NNN``, ``probe error``),
so no upstream text reaches a report, a log line or a metric.

Status of an upstream, from the latest result of each kind (:func:`derive_status`): ``unhealthy`` if the
health probe failed; else ``degraded`` if the models or functional probe failed; else ``healthy`` if any
probe has a result; else ``unknown``. The router skips ``unhealthy`` upstreams (and tries them all when
every one is skipped, see :mod:`voidllm.routing.strategy`).

Metrics (on :data:`voidllm.metrics.REGISTRY`): ``voidllm_model_health_status{model}`` is 1 healthy, 0.5
degraded, 0 unhealthy or unknown, and ``voidllm_model_health_latency_seconds{model}`` the latest successful
health probe's latency (kept while the upstream is down). ``model`` holds the upstream name, as in the
reference; the reference's extra ``status`` label is left out, since the value already encodes it.

Schedule: :func:`serve_health_probes` runs one task per (upstream, enabled kind). Each probes at once and
then on a fixed schedule ``t0 + k * interval`` (a probe that overruns its slot is followed at once by the
next, and the schedule moves on from there), with at most :data:`MAX_CONCURRENT_PROBES` requests in flight
overall. The service reports ready when every task has finished its first probe, so routing starts with
real data.

With ``redis.enabled`` one process probes, the holder of the ``model-health`` lease, and every other
process loads the holder's reports into its board (:meth:`HealthBoard.entries`, :meth:`HealthBoard.load`,
:mod:`voidllm.redis.boards`); without Redis every process probes on its own.

Left out: jitter between upstreams (they are probed in step; the limiter bounds the burst), Azure's
deployment name and URL layout in the functional probe (the model name is sent to ``<base_url>``), and
probing MCP servers (docs/reference/behaviour.md 8.5).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import socket
import ssl
from typing import TYPE_CHECKING, Any

import attrs
import trio
from prometheus_client import Gauge

from voidllm.lazyhttp import Client, resolved
from voidllm.metrics import REGISTRY
from voidllm.providers.registry import PROVIDERS, credential_headers

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    import httpx

    from voidllm.config.settings import HealthCheckConfig
    from voidllm.routing.latency import LatencyTracker
    from voidllm.routing.registry import Model, Upstream

__all__ = [
    "HEALTH_LATENCY",
    "HEALTH_STATUS",
    "MAX_CONCURRENT_PROBES",
    "PROBE_KINDS",
    "PROBE_TIMEOUT",
    "STATUSES",
    "HealthBoard",
    "HealthReport",
    "derive_status",
    "serve_health_probes",
]

log = logging.getLogger(__name__)

STATUSES = ("healthy", "degraded", "unhealthy", "unknown")
PROBE_KINDS = ("health", "models", "functional")
PROBE_TIMEOUT = 10.0
MAX_CONCURRENT_PROBES = 10
RESYNC_INTERVAL = 5.0
"""How often the probes follow a changing registry (models added, removed or repointed through the API)."""
_GAUGE_VALUE = {"healthy": 1.0, "degraded": 0.5}

HEALTH_STATUS = Gauge(
    "voidllm_model_health_status",
    "Probed health per upstream: 1 healthy, 0.5 degraded, 0 unhealthy or unknown.",
    ["model"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # the latest probe's, whichever process probed
)
HEALTH_LATENCY = Gauge(
    "voidllm_model_health_latency_seconds",
    "Latency of the latest successful health probe per upstream.",
    ["model"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # the latest probe's, whichever process probed
)


@attrs.frozen
class HealthReport:
    """What the probes last found out about one upstream (``name`` is ``model`` or ``model/deployment``).

    ``*_ok`` is ``None`` while that probe has no result (it is off, or has not run yet). ``last_error`` is the
    sanitised error of the most severe failing probe (health, then models, then functional).
    """

    name: str
    status: str = "unknown"
    last_check: dt.datetime | None = None
    last_error: str | None = None
    latency_ms: int | None = None
    health_ok: bool | None = None
    models_ok: bool | None = None
    functional_ok: bool | None = None


@attrs.frozen
class _Outcome:
    """One probe's result; ``latency`` (seconds) only for a successful health probe."""

    ok: bool
    error: str | None = None
    latency: float | None = None


def derive_status(health_ok: bool | None, models_ok: bool | None, functional_ok: bool | None) -> str:
    """The status from the latest result of each probe kind (``None``: no result)."""
    if health_ok is False:
        return "unhealthy"
    if models_ok is False or functional_ok is False:
        return "degraded"
    if (health_ok, models_ok, functional_ok) == (None, None, None):
        return "unknown"
    return "healthy"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@attrs.define(eq=False)
class HealthBoard:
    """The current :class:`HealthReport` per upstream, kept up to date by :func:`serve_health_probes`.

    ``board.status`` is the ``health`` lookup the router takes. Plain dicts: trio runs every task on one
    thread.
    """

    clock: Callable[[], dt.datetime] = _utcnow
    _results: dict[str, dict[str, _Outcome]] = attrs.field(factory=dict, init=False)
    _reports: dict[str, HealthReport] = attrs.field(factory=dict, init=False)

    def status(self, name: str) -> str:
        """``healthy``, ``degraded``, ``unhealthy``, or ``unknown`` for an upstream never probed."""
        return self.report(name).status

    def report(self, name: str) -> HealthReport:
        """The latest report of ``name``; an ``unknown`` one without a check for an upstream never probed."""
        return self._reports.get(name) or HealthReport(name)

    def reports(self) -> tuple[HealthReport, ...]:
        """Every probed upstream's report, by name."""
        return tuple(self._reports[name] for name in sorted(self._reports))

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every checked report as JSON-ready metadata (:mod:`voidllm.redis.boards` shares them)."""
        return {
            report.name: {
                **attrs.asdict(report, filter=lambda field, _: field.name != "last_check"),
                "checked_at": report.last_check.isoformat(),
            }
            for report in self._reports.values()
            if report.last_check is not None
        }

    def load(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the reports with ``entries`` (another process's probes, read by
        :func:`voidllm.redis.boards.serve_shared_board`); upstreams not in them go back to ``unknown``."""
        known = set(attrs.fields_dict(HealthReport)) - {"name", "last_check"}
        reports = {}
        for name, entry in entries.items():
            fields = {key: value for key, value in entry.items() if key in known}
            try:  # another gateway version may write other fields: an entry this one cannot read is unknown
                checked = dt.datetime.fromisoformat(entry["checked_at"])
                reports[name] = HealthReport(name=name, last_check=checked, **fields)
            except (KeyError, TypeError, ValueError):
                continue
        for name in set(self._reports) | set(reports):
            previous, report = self.status(name), reports.get(name) or HealthReport(name)
            HEALTH_STATUS.labels(model=name).set(_GAUGE_VALUE.get(report.status, 0.0))
            if report.latency_ms is not None:
                HEALTH_LATENCY.labels(model=name).set(report.latency_ms / 1000)
            if report.status != previous:
                log.info(
                    "upstream health changed",
                    extra={"upstream": name, "status": report.status, "previous": previous},
                )
        self._results.clear()  # a process that takes the lease over starts its own results afresh
        self._reports = reports

    def _record(self, name: str, kind: str, outcome: _Outcome) -> HealthReport:
        """Fold one probe result into ``name``'s report, update the gauges and log a change of status."""
        previous = self.status(name)
        results = self._results.setdefault(name, {})
        results[kind] = outcome
        report = _report(name, results, self.clock())
        self._reports[name] = report
        HEALTH_STATUS.labels(model=name).set(_GAUGE_VALUE.get(report.status, 0.0))
        if outcome.latency is not None:
            HEALTH_LATENCY.labels(model=name).set(outcome.latency)
        if report.status != previous:
            log.info(
                "upstream health changed",
                extra={
                    "upstream": name,
                    "status": report.status,
                    "previous": previous,
                    "error": report.last_error,
                },
            )
        return report


def _report(name: str, results: Mapping[str, _Outcome], now: dt.datetime) -> HealthReport:
    ok = {kind: results[kind].ok if kind in results else None for kind in PROBE_KINDS}
    errors = [results[kind].error for kind in PROBE_KINDS if kind in results and not results[kind].ok]
    health = results.get("health")
    latency = health.latency if health is not None else None
    return HealthReport(
        name=name,
        status=derive_status(ok["health"], ok["models"], ok["functional"]),
        last_check=now,
        last_error=errors[0] if errors else None,
        latency_ms=None if latency is None else max(1, round(latency * 1000)),
        health_ok=ok["health"],
        models_ok=ok["models"],
        functional_ok=ok["functional"],
    )


# ------------------------------------------------------------------------------------------- probes


@attrs.frozen
class _Job:
    """One probe kind of one upstream, and how often to run it."""

    upstream: Upstream
    model: Model
    kind: str
    interval: float


@attrs.frozen
class _ProbeRequest:
    method: str
    url: str
    json: dict[str, Any] | None = None


def _chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


def _completion(model: str) -> dict[str, Any]:
    return {"model": model, "prompt": "hi", "max_tokens": 1}


def _embedding(model: str) -> dict[str, Any]:
    return {"model": model, "input": "test"}


# Model type -> (API path, request body for the model name). Types not listed are not probed.
_FUNCTIONAL: Mapping[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "chat": ("chat/completions", _chat),
    "completion": ("completions", _completion),
    "embedding": ("embeddings", _embedding),
}


def _probe_request(job: _Job) -> _ProbeRequest | None:
    """The request a probe sends, or ``None`` for a functional probe of a type that is not probed."""
    upstream = job.upstream
    if job.kind == "health":
        import httpx  # loaded at first use (voidllm.lazyhttp)

        base = httpx.URL(upstream.base_url)
        return _ProbeRequest("GET", str(httpx.URL(scheme=base.scheme, host=base.host, port=base.port)))
    if job.kind == "models":
        return _ProbeRequest("GET", upstream.url("models"))
    if job.model.type not in _FUNCTIONAL:
        return None
    path, body = _FUNCTIONAL[job.model.type]
    return _ProbeRequest("POST", upstream.url(path), body(job.model.name))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from, including the members of exception groups."""
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        stack.extend(getattr(current, "exceptions", ()))


def _sanitise(exc: httpx.HTTPError) -> str:
    """A fixed short description of a transport error; never the exception's text."""
    import httpx  # loaded at first use (voidllm.lazyhttp)

    if isinstance(exc, httpx.TimeoutException):
        return "request timeout"
    causes = list(_causes(exc))
    for kind, text in (
        (ssl.SSLError, "tls error"),
        (socket.gaierror, "dns resolution failed"),
        (ConnectionRefusedError, "connection refused"),
    ):
        if any(isinstance(cause, kind) for cause in causes):
            return text
    return "connection failed"


async def _send(client: httpx.AsyncClient, request: _ProbeRequest, upstream: Upstream) -> int:
    """Send one probe request and return the status code without reading the body."""
    headers = credential_headers(upstream.provider, upstream.api_key)
    async with client.stream(
        request.method, request.url, json=request.json, headers=headers, follow_redirects=False
    ) as response:
        return response.status_code


async def _probe(job: _Job, client: Client) -> _Outcome:
    """Run one probe under :data:`PROBE_TIMEOUT`. Never raises (except ``Cancelled``)."""
    import httpx  # loaded at first use (voidllm.lazyhttp)

    request = _probe_request(job)
    if request is None:
        return _Outcome(ok=True)
    began = trio.current_time()
    with trio.move_on_after(PROBE_TIMEOUT):
        try:
            status = await _send(resolved(client), request, job.upstream)
        except httpx.HTTPError as exc:
            return _Outcome(ok=False, error=_sanitise(exc))
        except Exception as exc:
            log.warning(
                "health probe raised",
                extra={"upstream": job.upstream.name, "probe": job.kind, "error_type": type(exc).__name__},
            )
            return _Outcome(ok=False, error="probe error")
        return _judge(job.kind, status, max(trio.current_time() - began, 0.001))
    return _Outcome(ok=False, error="request timeout")


def _judge(kind: str, status: int, seconds: float) -> _Outcome:
    if kind == "health":
        return _Outcome(ok=True, latency=seconds)
    if 200 <= status < 300:
        return _Outcome(ok=True)
    return _Outcome(ok=False, error=f"http {status}")


# ------------------------------------------------------------------------------------------ service


async def serve_health_probes(
    *,
    models: Sequence[Model] | Callable[[], Sequence[Model]],
    settings: HealthCheckConfig,
    client: Client,
    board: HealthBoard,
    latency: LatencyTracker | None = None,
    max_concurrent: int = MAX_CONCURRENT_PROBES,
    resync_interval: float = RESYNC_INTERVAL,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Probe every upstream of ``models`` with every enabled probe kind until cancelled.

    Args:
        models: the models whose upstreams are probed, or a function returning the current ones (the
            running registry, which admin changes replace): then every ``resync_interval`` seconds probes
            start for new upstreams (or changed URLs) and stop for removed ones.
        settings: which probe kinds run, and their intervals.
        client: the shared client for probes, owned by the caller (created and closed in the app lifetime).
        board: receives every result.
        latency: if given, receives each successful health probe's latency.
        max_concurrent: probe requests in flight at most, over all upstreams and kinds.

    Readiness: ``task_status.started()`` once every probe has finished its first run (at once when no probe
    is enabled). A failing probe is recorded, never raised.

    Cancellation: cancels the probe tasks it owns; nothing else to clean up (responses are closed by
    ``client.stream`` on the way out).
    """
    current = models if callable(models) else (lambda: models)
    jobs = _jobs(current(), settings)
    if settings.functional.enabled and jobs:
        log.warning("functional health probes are enabled: each one is a billable request to the provider")
    limiter = trio.CapacityLimiter(max_concurrent)
    run = functools.partial(_serve_job, client=client, board=board, latency=latency, limiter=limiter)
    running: dict[tuple[str, str, str, str], trio.CancelScope] = {}

    async def start(job: _Job, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            running[_job_key(job)] = scope
            await run(job, task_status=task_status)

    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as first_round:
            for job in jobs:
                first_round.start_soon(nursery.start, start, job)
        task_status.started()
        if not callable(models) or not any(getattr(settings, kind).enabled for kind in PROBE_KINDS):
            await trio.sleep_forever()
        while True:
            await trio.sleep(resync_interval)
            wanted = {_job_key(job): job for job in _jobs(current(), settings)}
            for key in set(running) - set(wanted):
                running.pop(key).cancel()
            for key in set(wanted) - set(running):
                nursery.start_soon(start, wanted[key])


def _job_key(job: _Job) -> tuple[str, str, str, str]:
    return (job.upstream.name, job.upstream.base_url, job.upstream.provider, job.kind)


def _jobs(models: Sequence[Model], settings: HealthCheckConfig) -> list[_Job]:
    kinds = [(kind, getattr(settings, kind)) for kind in PROBE_KINDS]
    return [
        _Job(upstream, model, kind, probe.interval)
        for model in models
        for upstream in model.upstreams
        for kind, probe in kinds
        if probe.enabled
        and not PROVIDERS[upstream.provider].builtin_demo  # the demo provider is always there
    ]


async def _serve_job(
    job: _Job,
    *,
    client: Client,
    board: HealthBoard,
    latency: LatencyTracker | None,
    limiter: trio.CapacityLimiter,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Probe now, report started, then probe at every later multiple of ``job.interval``."""
    next_at = trio.current_time()
    while True:
        async with limiter:
            outcome = await _probe(job, client)
        board._record(job.upstream.name, job.kind, outcome)
        if latency is not None and outcome.latency is not None:
            latency.observe_probe(job.upstream.name, outcome.latency)
        task_status.started()
        task_status = trio.TASK_STATUS_IGNORED
        next_at = max(next_at + job.interval, trio.current_time())
        await trio.sleep_until(next_at)
