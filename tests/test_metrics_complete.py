"""The README's metrics table and a live scrape agree in both directions, and the Grafana example only
charts metrics of that table.

The gateway serves a plain model (streamed and non-streamed requests), a two-deployment model whose first
deployment answers 503 (a failover and a retry), and a key with one request per minute (a rate-limit
rejection), with health probes on, so most labelled series exist when ``/metrics`` is scraped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.admin_tenancy import create_key
from tests.gateway import make_config, model_yaml, run_gateway
from tests.polling import poll_until
from voidllm.testing.mock_openai import Behaviour, open_mock_upstream

ROOT = Path(__file__).parent.parent
ROW = re.compile(r"^\| `(voidllm_\w+)` \| (counter|gauge|histogram) \| ([^|]*) \|")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    """The README's metrics table: name -> (type, label names)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    table: dict[str, tuple[str, frozenset[str]]] = {}
    for line in section.splitlines():
        if match := ROW.match(line):
            name, kind, labels = match.groups()
            assert name not in table, f"{name} is listed twice"
            names = {label.strip() for label in labels.split(",")} - {"", "\u2013"}  # an en dash: no labels
            table[name] = kind, frozenset(names)
    return table


def exposed_types(text: str) -> dict[str, str]:
    """``# TYPE`` lines of VoidLLM's metrics (labelled metrics have one even before their first sample)."""
    return dict(re.findall(r"^# TYPE (voidllm_\w+) (\w+)$", text, re.MULTILINE))


def series_labels(text: str) -> dict[str, set[frozenset[str]]]:
    """For each VoidLLM metric with samples, the label-name sets its samples carry (``le`` left out)."""
    seen: dict[str, set[frozenset[str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("voidllm_"):
                continue
            name = sample.name
            if family.type == "histogram":
                name = family.name
            elif family.type == "counter":
                name = family.name + "_total"
            seen.setdefault(name, set()).add(frozenset(sample.labels) - {"le"})
    return seen


def sample(text: str, series: str) -> float:
    """The value of ``series`` (name and labels as exposed), 0 when it has no sample."""
    prefix = f"{series} "
    values = [float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix)]
    assert len(values) <= 1, f"{series}: {values}"
    return values[0] if values else 0.0


def test_the_table_parses() -> None:
    table = documented()
    assert len(table) > 40
    assert table["voidllm_upstream_requests_total"] == ("counter", {"model", "provider", "status"})
    assert table["voidllm_active_streams"] == ("gauge", frozenset())


async def test_every_documented_metric_is_exported_and_every_exported_one_documented(sqlite_dsn: str) -> None:
    async with (
        open_mock_upstream(Behaviour(stream_chunks=3)) as mock,
        open_mock_upstream(Behaviour(status=503)) as broken,
    ):
        models = (
            "models:"
            + model_yaml("plain", mock.base_url)
            + f"""
  - name: multi
    strategy: priority
    deployments:
      - {{name: broken, provider: openai, base_url: "{broken.base_url}", priority: 0}}
      - {{name: healthy, provider: openai, base_url: "{mock.base_url}", priority: 1}}
"""
        )
        config = make_config(sqlite_dsn, models, settings="health_check:\n  health:\n    enabled: true")
        async with run_gateway(config) as gw:
            auth = {"Authorization": f"Bearer {gw.api_key()}"}
            before = (
                await gw.client.get("/metrics")
            ).text  # the registry is the process's: earlier tests count

            async def chat(headers: dict[str, str], model: str, **extra: object) -> int:
                body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
                return (await gw.client.post("/v1/chat/completions", headers=headers, json=body)).status_code

            assert await chat(auth, "plain") == 200
            assert await chat(auth, "plain", stream=True) == 200
            assert await chat(auth, "multi") == 200  # 503 from "broken", then "healthy"
            me = (await gw.client.get("/api/v1/me", headers=auth)).json()
            key = await create_key(gw, me["org_id"], user_id=me["id"], requests_per_minute=1)
            limited = {"Authorization": f"Bearer {key['key']}"}
            assert [await chat(limited, "plain"), await chat(limited, "plain")] == [200, 429]
            unknown = await gw.client.get("/v1/models", headers={"Authorization": "Bearer vl_uk_nope"})
            assert unknown.status_code == 401
            # a request's metrics are recorded as it finishes, just after its last byte went out
            served = 'voidllm_upstream_requests_total{model="plain",provider="openai",status="200"}'

            async def recorded() -> bool:
                text = (await gw.client.get("/metrics")).text
                return sample(text, served) - sample(before, served) >= 3

            with trio.fail_after(5):
                await poll_until(recorded, interval=0.01)
            text = (await gw.client.get("/metrics")).text

    table = documented()
    types = exposed_types(text)
    assert sorted(set(table) - set(types)) == [], "documented in README.md but not exported"
    assert sorted(set(types) - set(table)) == [], "exported but missing from README.md's metrics table"
    assert {name: kind for name, (kind, _) in table.items()} == types

    labels = series_labels(text)
    wrong = {name: seen for name, seen in labels.items() if seen != {table[name][1]}}
    assert wrong == {}, "samples whose label names differ from the table"
    with_samples = {
        f"voidllm_{name}"
        for name in (
            "upstream_requests_total",
            "upstream_errors_total",
            "proxy_duration_seconds",
            "proxy_ttft_seconds",
            "tokens_total",
            "routing_attempts_total",
            "routing_failovers_total",
            "routing_retries_total",
            "ratelimit_rejections_total",
            "auth_failures_total",
            "model_health_status",
            "model_health_latency_seconds",
            "circuit_breaker_state",
            "cache_size",
            "service_up",
            "store_operation_seconds",
            "db_open_connections",
            "usage_buffer_depth",
        )
    }
    assert sorted(with_samples - set(labels)) == []

    def grew(series: str) -> float:
        return sample(text, series) - sample(before, series)

    assert grew('voidllm_routing_retries_total{model="multi",strategy="priority"}') == 1.0
    assert (
        grew('voidllm_routing_failovers_total{deployment="broken",model="multi",reason="status_5xx"}') == 1.0
    )
    assert grew('voidllm_ratelimit_rejections_total{level="key",scope="request"}') == 1.0
    assert sample(text, 'voidllm_model_health_status{model="multi/broken"}') == 1.0  # a 503 still answers
    assert sample(text, 'voidllm_store_operation_seconds_count{operation="transaction",outcome="ok"}') > 0.0
    assert sample(text, "voidllm_db_open_connections") >= 1.0
    assert "_created" not in "".join(types)


def test_the_grafana_example_charts_only_documented_metrics() -> None:
    dashboard = json.loads((ROOT / "examples" / "grafana-dashboard.json").read_text())
    assert dashboard["schemaVersion"] >= 36
    assert any(
        var["name"] == "DS_PROMETHEUS" and var["type"] == "datasource"
        for var in dashboard["templating"]["list"]
    )
    table = documented()
    targets = [target for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs = [target["expr"] for target in targets]
    assert exprs
    assert all(target["datasource"]["uid"] == "${DS_PROMETHEUS}" for target in targets)
    used: set[str] = set()
    for name in re.findall(r"voidllm_\w+", " ".join(exprs)):
        base = next((name.removesuffix(s) for s in HISTOGRAM_SERIES if name.endswith(s)), name)
        if base != name and table.get(base, ("",))[0] == "histogram":
            name = base
        assert name in table, f"the dashboard charts {name}, which README.md does not document"
        used.add(name)
    wanted = {
        f"voidllm_{name}"
        for name in (
            "upstream_requests_total",
            "proxy_duration_seconds",
            "proxy_ttft_seconds",
            "tokens_total",
            "upstream_errors_total",
            "circuit_breaker_state",
            "ratelimit_rejections_total",
            "usage_buffer_depth",
            "usage_events_dropped_total",
            "store_operation_seconds",
            "rollup_lag_seconds",
            "retention_rows_deleted_total",
        )
    }
    assert sorted(wanted - used) == []
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
