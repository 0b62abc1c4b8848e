"""Health probes (docs/reference/behaviour.md 6.4): schedule, status derivation, sanitised errors, auth,
gauges, readiness.

Every test but the last two runs on the autojump clock against ``httpx.MockTransport`` handlers, which
``await trio.sleep`` to play a slow upstream, and asserts exact times. The last two use real sockets and the
real clock: the mock OpenAI server, and a port nobody listens on.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio
import trio.testing

from voidllm.config.settings import (
    FunctionalProbeConfig,
    HealthCheckConfig,
    HealthProbeConfig,
    ModelsProbeConfig,
)
from voidllm.metrics import REGISTRY
from voidllm.routing.breaker import BreakerRegistry, BreakerSettings
from voidllm.routing.cooldown import CooldownRegistry
from voidllm.routing.health import (
    PROBE_TIMEOUT,
    HealthBoard,
    HealthReport,
    derive_status,
    serve_health_probes,
)
from voidllm.routing.latency import LatencyTracker
from voidllm.routing.registry import Model, Upstream
from voidllm.routing.strategy import Router
from voidllm.testing.mock_openai import open_mock_upstream

MARKER = "SECRET-BODY-MARKER-7f3a"
ROOT = "http://up.test:8080"
BASE = f"{ROOT}/v1"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@attrs.define
class Seen:
    """One request a fake upstream received, with the virtual time it arrived."""

    at: float
    method: str
    url: str
    headers: httpx.Headers
    body: Any


@attrs.define
class FakeUpstream:
    """A MockTransport handler: ``answer(request)`` decides; every request is recorded."""

    answer: Callable[[httpx.Request], Awaitable[httpx.Response]]
    seen: list[Seen] = attrs.Factory(list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content) if request.content else None
        self.seen.append(Seen(trio.current_time(), request.method, str(request.url), request.headers, body))
        return await self.answer(request)

    def times(self, url: str) -> list[float]:
        return [s.at for s in self.seen if s.url == url]


def reply(status: int = 200, delay: float = 0.0, **per_path: int) -> Handler:
    """Answer ``status`` (``per_path[<last path segment>]`` if given) after ``delay``; MARKER in the body."""

    async def answer(request: httpx.Request) -> httpx.Response:
        await trio.sleep(delay)
        code = per_path.get(request.url.path.rstrip("/").rsplit("/", 1)[-1] or "root", status)
        return httpx.Response(code, text=f'{{"error": "{MARKER}"}}', headers={"x-leak": MARKER})

    return answer


def model(name: str, type: str = "chat", *, provider: str = "openai", api_key: str = "", n: int = 0) -> Model:
    """A model served at BASE; with ``n`` deployments ``name/d0..``, each on its own host."""
    if n == 0:
        ups = (Upstream(name, provider, BASE, api_key),)
    else:
        ups = tuple(Upstream(f"{name}/d{i}", provider, f"http://d{i}.test/v1", api_key) for i in range(n))
    return Model(name, type, (), ups)


def settings(
    health: float | None = None, models: float | None = None, functional: float | None = None
) -> HealthCheckConfig:
    """Enable each probe whose interval is given."""
    return HealthCheckConfig(
        HealthProbeConfig(health is not None, health or 30.0),
        ModelsProbeConfig(models is not None, models or 60.0),
        FunctionalProbeConfig(functional is not None, functional or 300.0),
    )


async def start(
    nursery: trio.Nursery, fake: Handler, models: list[Model], cfg: HealthCheckConfig, **kw: Any
) -> HealthBoard:
    """Start the service in the test's nursery; returns once it is ready."""
    board = kw.pop("board", HealthBoard())
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    service = functools.partial(
        serve_health_probes, models=models, settings=cfg, client=client, board=board, **kw
    )
    await nursery.start(service)
    return board


def gauge(metric: str, name: str) -> float | None:
    return REGISTRY.get_sample_value(metric, {"model": name})


# --- schedule and readiness


async def test_first_round_at_zero_then_each_kind_on_its_interval(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    fake = FakeUpstream(reply())
    await start(nursery, fake, [model("sched")], settings(health=30, models=60, functional=300))
    await trio.sleep(310)
    assert fake.times(ROOT) == [0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300]
    assert fake.times(f"{BASE}/models") == [0, 60, 120, 180, 240, 300]
    assert fake.times(f"{BASE}/chat/completions") == [0, 300]


async def test_probes_follow_a_changing_registry(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    """Models added, removed or repointed at run time (admin API) are probed from the next resync on."""
    fake = FakeUpstream(reply())
    current = [model("first", n=1)]
    await start(nursery, fake, lambda: current, settings(health=30), resync_interval=5)  # type: ignore[arg-type]
    assert [s.url for s in fake.seen] == ["http://d0.test"]
    current = [model("second", n=2)]  # "first/d0" removed, "second/d0" and "second/d1" added
    await trio.sleep(36)
    assert fake.times("http://d1.test") == [5, 35]  # started at the resync, then on its own interval
    assert fake.times("http://d0.test") == [0, 5, 35]  # "first/d0" stopped at 5 s, "second/d0" took over
    assert len([s for s in fake.seen if s.url == "http://d0.test" and s.at == 30]) == 0


async def test_ready_only_after_the_first_round_of_every_probe(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await trio.sleep(5 if request.url.path.endswith("/models") else 2)
        return httpx.Response(200)

    board = await start(nursery, FakeUpstream(slow), [model("ready", n=2)], settings(health=30, models=60))
    assert trio.current_time() == 5
    assert [(r.name, r.status, r.health_ok, r.models_ok) for r in board.reports()] == [
        ("ready/d0", "healthy", True, True),
        ("ready/d1", "healthy", True, True),
    ]


async def test_nothing_enabled_is_ready_at_once(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    fake = FakeUpstream(reply())
    board = await start(nursery, fake, [model("off")], settings())
    assert trio.current_time() == 0
    await trio.sleep(1000)
    assert fake.seen == []
    assert board.reports() == ()
    assert board.status("off") == "unknown"


async def test_the_limiter_bounds_concurrent_probes(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    running = peak = 0

    async def counting(request: httpx.Request) -> httpx.Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1
        return httpx.Response(200)

    board = await start(nursery, counting, [model("many", n=25)], settings(health=30))
    assert peak == 10
    assert trio.current_time() == 3  # 25 probes of 1 s, 10 at a time
    assert len(board.reports()) == 25


async def test_a_probe_that_raises_never_stops_the_service(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: httpx.Request) -> httpx.Response:
        raise ValueError(MARKER)

    fake = FakeUpstream(broken)
    board = await start(nursery, fake, [model("broken")], settings(health=30))
    await trio.sleep(65)
    assert fake.times(ROOT) == [0, 30, 60]
    assert board.report("broken").last_error == "probe error"
    assert MARKER not in caplog.text


# --- status derivation

# health, models, functional: "+" ok, "x" failed, "-" no result.
STATUS_TABLE = """
--- unknown    +-- healthy    x-- unhealthy
-+- healthy    ++- healthy    x+- unhealthy
-x- degraded   +x- degraded   xx- unhealthy
--+ healthy    +-+ healthy    x-+ unhealthy
-++ healthy    +++ healthy    x++ unhealthy
-x+ degraded   +x+ degraded   xx+ unhealthy
--x degraded   +-x degraded   x-x unhealthy
-+x degraded   ++x degraded   x+x unhealthy
-xx degraded   +xx degraded   xxx unhealthy
"""
_FLAG = {"+": True, "x": False, "-": None}


@pytest.mark.parametrize(("flags", "expected"), list(zip(*[iter(STATUS_TABLE.split())] * 2, strict=True)))
def test_status_derivation_table(flags: str, expected: str) -> None:
    assert derive_status(*(_FLAG[f] for f in flags)) == expected


def test_the_table_covers_every_combination() -> None:
    assert sorted(STATUS_TABLE.split()[::2]) == sorted("".join(p) for p in itertools.product("+x-", repeat=3))


@pytest.mark.parametrize(
    ("codes", "expected", "error"),
    [
        ({}, "healthy", None),
        ({"root": 503}, "healthy", None),
        ({"models": 500}, "degraded", "http 500"),
        ({"completions": 429}, "degraded", "http 429"),
        ({"models": 404, "completions": 400}, "degraded", "http 404"),
    ],
)
async def test_status_from_every_probe_kind(
    autojump_clock: trio.testing.MockClock,
    nursery: trio.Nursery,
    codes: dict[str, int],
    expected: str,
    error: str | None,
) -> None:
    cfg = settings(health=30, models=60, functional=300)
    board = await start(nursery, reply(**codes), [model("all")], cfg)
    report = board.report("all")
    assert (report.status, report.last_error) == (expected, error)
    assert report.models_ok is ("models" not in codes)
    assert report.functional_ok is ("completions" not in codes)


async def test_status_follows_the_latest_result(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    down = True

    async def flapping(request: httpx.Request) -> httpx.Response:
        if down:
            raise httpx.ConnectError("refused")
        return httpx.Response(200)

    board = await start(nursery, flapping, [model("flap")], settings(health=30))
    assert board.status("flap") == "unhealthy"
    down = False
    await trio.sleep(30.5)  # just after the probe at t=30
    assert board.report("flap") == HealthReport(
        "flap", "healthy", board.report("flap").last_check, None, 1, True, None, None
    )


# --- the health probe


@pytest.mark.parametrize("code", [200, 204, 301, 401, 404, 500, 503])
async def test_any_http_response_is_healthy_for_the_health_probe(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, code: int
) -> None:
    fake = FakeUpstream(reply(code))
    board = await start(nursery, fake, [model(f"any{code}")], settings(health=30))
    assert [(s.method, s.url) for s in fake.seen] == [("GET", ROOT)]
    report = board.report(f"any{code}")
    assert (report.status, report.health_ok, report.last_error) == ("healthy", True, None)


async def test_a_redirect_is_not_followed(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    async def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "http://elsewhere.test/v1/models"})

    fake = FakeUpstream(redirect)
    board = await start(nursery, fake, [model("redir")], settings(health=30, models=60))
    assert sorted(s.url for s in fake.seen) == [ROOT, f"{BASE}/models"]
    assert (board.status("redir"), board.report("redir").last_error) == ("degraded", "http 302")


async def test_latency_is_measured_and_fed_to_the_tracker(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    tracker = LatencyTracker()
    board = await start(nursery, reply(delay=0.25), [model("lat")], settings(health=30), latency=tracker)
    assert board.report("lat").latency_ms == 250
    assert tracker.probe("lat") == 0.25
    assert gauge("voidllm_model_health_latency_seconds", "lat") == 0.25
    assert gauge("voidllm_model_health_status", "lat") == 1.0


async def test_latency_is_at_least_one_millisecond(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    tracker = LatencyTracker()
    board = await start(nursery, reply(), [model("fast")], settings(health=30), latency=tracker)
    assert board.report("fast").latency_ms == 1
    assert tracker.probe("fast") == 0.001


async def test_timeout_after_exactly_ten_seconds(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    tracker = LatencyTracker()
    fake = FakeUpstream(reply(delay=60))
    board = await start(nursery, fake, [model("hang")], settings(health=30), latency=tracker)
    assert trio.current_time() == PROBE_TIMEOUT == 10
    report = board.report("hang")
    assert (report.status, report.last_error, report.latency_ms) == ("unhealthy", "request timeout", None)
    assert tracker.probe("hang") is None
    await trio.sleep(25)
    assert fake.times(ROOT) == [0, 30]  # the interval runs from the probe's start


def _raise(exc: BaseException) -> Handler:
    async def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


def _chained(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (_chained(httpx.ConnectError(MARKER), ConnectionRefusedError(111, MARKER)), "connection refused"),
        (
            _chained(httpx.ConnectError(MARKER), OSError(MARKER)),
            "connection failed",
        ),
        (
            _chained(
                httpx.ConnectError(MARKER),
                _chained(OSError(MARKER), ExceptionGroup(MARKER, [ConnectionRefusedError(111, MARKER)])),
            ),
            "connection refused",
        ),
        (_chained(httpx.ConnectError(MARKER), socket.gaierror(-2, MARKER)), "dns resolution failed"),
        (_chained(httpx.ConnectError(MARKER), ssl.SSLCertVerificationError(MARKER)), "tls error"),
        (httpx.ConnectTimeout(MARKER), "request timeout"),
        (httpx.ReadTimeout(MARKER), "request timeout"),
        (httpx.RemoteProtocolError(MARKER), "connection failed"),
        (ValueError(MARKER), "probe error"),
    ],
)
async def test_errors_are_sanitised(
    autojump_clock: trio.testing.MockClock,
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
    exc: Exception,
    error: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    board = await start(nursery, _raise(exc), [model("err")], settings(health=30))
    report = board.report("err")
    assert (report.status, report.last_error) == ("unhealthy", error)
    assert MARKER not in repr(board.reports())
    assert MARKER not in caplog.text
    assert all(MARKER not in repr(vars(record)) for record in caplog.records)


async def test_response_bodies_and_headers_never_reach_reports_or_logs(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    board = await start(
        nursery, reply(500), [model("leak", "embedding")], settings(health=30, models=60, functional=300)
    )
    assert (board.status("leak"), board.report("leak").last_error) == ("degraded", "http 500")
    assert MARKER not in repr(board.reports())
    assert all(MARKER not in repr(vars(record)) for record in caplog.records)


# --- models and functional probes


@pytest.mark.parametrize(
    ("code", "status"),
    [(200, "healthy"), (204, "healthy"), (401, "degraded"), (404, "degraded"), (500, "degraded")],
)
async def test_models_probe_needs_a_2xx(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, code: int, status: str
) -> None:
    fake = FakeUpstream(reply(code))
    board = await start(nursery, fake, [model(f"models{code}")], settings(models=60))
    assert [(s.method, s.url) for s in fake.seen] == [("GET", f"{BASE}/models")]
    report = board.report(f"models{code}")
    assert (report.status, report.health_ok, report.models_ok) == (status, None, code < 300)


@pytest.mark.parametrize(
    ("type_", "path", "body"),
    [
        (
            "chat",
            "chat/completions",
            {"model": "fn", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
        ),
        ("completion", "completions", {"model": "fn", "prompt": "hi", "max_tokens": 1}),
        ("embedding", "embeddings", {"model": "fn", "input": "test"}),
    ],
)
async def test_functional_probe_per_model_type(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, type_: str, path: str, body: dict[str, Any]
) -> None:
    fake = FakeUpstream(reply())
    board = await start(nursery, fake, [model("fn", type_)], settings(functional=300))
    assert [(s.method, s.url, s.body) for s in fake.seen] == [("POST", f"{BASE}/{path}", body)]
    assert (board.status("fn"), board.report("fn").functional_ok) == ("healthy", True)


@pytest.mark.parametrize("type_", ["reranking", "image", "audio_transcription", "tts"])
async def test_functional_probe_skips_other_model_types(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, type_: str
) -> None:
    fake = FakeUpstream(reply(500))
    board = await start(nursery, fake, [model("skip", type_)], settings(functional=300))
    await trio.sleep(600)
    assert fake.seen == []
    assert (board.status("skip"), board.report("skip").functional_ok) == ("healthy", True)


async def test_functional_probes_warn_once_that_they_are_billable(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="voidllm.routing.health")
    await start(nursery, reply(), [model("bill", n=3), model("bill2")], settings(functional=300))
    await trio.sleep(900)
    assert [r.getMessage() for r in caplog.records if "billable" in r.getMessage()] == [
        "functional health probes are enabled: each one is a billable request to the provider"
    ]


# --- auth headers


AUTH_HEADERS = ("authorization", "x-api-key", "anthropic-version", "api-key")


@pytest.mark.parametrize(
    ("provider", "api_key", "expected"),
    [
        ("openai", "sk-1", {"authorization": "Bearer sk-1"}),
        ("vllm", "sk-2", {"authorization": "Bearer sk-2"}),
        ("custom", "", {}),
        ("anthropic", "ak-3", {"x-api-key": "ak-3", "anthropic-version": "2023-06-01"}),
        ("azure", "az-4", {"api-key": "az-4"}),
    ],
)
async def test_auth_headers_per_provider(
    autojump_clock: trio.testing.MockClock,
    nursery: trio.Nursery,
    provider: str,
    api_key: str,
    expected: dict[str, str],
) -> None:
    fake = FakeUpstream(reply())
    cfg = settings(health=30, models=60, functional=300)
    await start(nursery, fake, [model("auth", provider=provider, api_key=api_key)], cfg)
    assert len(fake.seen) == 3
    for seen in fake.seen:
        assert {k: v for k, v in seen.headers.items() if k in AUTH_HEADERS} == expected


# --- the board


async def test_gauge_values_per_status(autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    async def mixed(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "d2.test":
            raise httpx.ConnectError("refused")
        return httpx.Response(500 if host == "d1.test" and request.url.path == "/v1/models" else 200)

    await start(nursery, mixed, [model("gauge", n=3)], settings(health=30, models=60))
    assert [gauge("voidllm_model_health_status", f"gauge/d{i}") for i in range(3)] == [1.0, 0.5, 0.0]
    assert gauge("voidllm_model_health_latency_seconds", "gauge/d0") == 0.001
    assert gauge("voidllm_model_health_latency_seconds", "gauge/d2") is None


async def test_reports_of_probed_and_unprobed_upstreams(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    board = await start(nursery, reply(), [model("rep")], settings(health=30))
    report = board.report("rep")
    assert report.last_check is not None
    assert report.last_check.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.UTC) - report.last_check) < dt.timedelta(minutes=1)
    assert board.report("never") == HealthReport("never", "unknown", None, None, None, None, None, None)
    assert board.status("never") == "unknown"
    assert [r.name for r in board.reports()] == ["rep"]


async def test_the_router_skips_unhealthy_deployments_unless_all_are(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    down = {"d1.test"}

    async def some_down(request: httpx.Request) -> httpx.Response:
        if request.url.host in down:
            raise httpx.ConnectError("refused")
        return httpx.Response(200)

    m = model("route", n=3)
    board = await start(nursery, some_down, [m], settings(health=30))
    breakers = BreakerRegistry(BreakerSettings())
    router = Router(breakers, CooldownRegistry(), LatencyTracker(), health=board.status)

    def ordered() -> list[str]:
        return [u.name for u in router.order(m.upstreams, strategy="priority", model="route", max_retries=0)]

    assert ordered() == ["route/d0", "route/d2"]
    down.update({"d0.test", "d2.test"})
    await trio.sleep(30.5)  # just after the probe at t=30
    assert ordered() == ["route/d0", "route/d1", "route/d2"]  # every one unhealthy: all are tried


# --- real sockets, real clock


async def probe_for_real(upstream: Upstream, tracker: LatencyTracker | None = None) -> HealthReport:
    """Run the service with a real client until it is ready; the report of ``upstream``."""
    board = HealthBoard()
    m = Model(upstream.name, "chat", (), (upstream,))
    with trio.fail_after(5):
        async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
            service = functools.partial(
                serve_health_probes,
                models=[m],
                settings=settings(health=30, models=60),
                client=client,
                board=board,
                latency=tracker,
            )
            await nursery.start(service)
            nursery.cancel_scope.cancel()
    return board.report(upstream.name)


async def test_real_mock_upstream_is_healthy() -> None:
    tracker = LatencyTracker()
    async with open_mock_upstream() as mock:
        assert mock.base_url is not None
        report = await probe_for_real(Upstream("real", "openai", mock.base_url, "sk-test"), tracker)
        assert sorted(r.path for r in mock.requests) == ["/", "/v1/models"]
        assert {dict(r.headers).get("authorization") for r in mock.requests} == {"Bearer sk-test"}
    assert (report.status, report.health_ok, report.models_ok) == ("healthy", True, True)
    assert report.last_error is None
    assert report.latency_ms is not None
    assert report.latency_ms >= 1
    assert tracker.probe("real") is not None


async def test_refused_port_is_unhealthy() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the probe: nobody listens there
    report = await probe_for_real(Upstream("refused", "openai", f"http://127.0.0.1:{port}/v1"))
    assert (report.status, report.health_ok, report.models_ok, report.last_error) == (
        "unhealthy",
        False,
        False,
        "connection refused",
    )
    assert gauge("voidllm_model_health_status", "refused") == 0.0
