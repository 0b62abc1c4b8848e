"""``settings.otel``: defaults, strictness (a load error naming the key) and the exporter each protocol
builds."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

from voidllm.config import ConfigError
from voidllm.config.loader import parse_config
from voidllm.config.settings import OtelConfig
from voidllm.tracing.export import build_exporter, traces_url

KEY = "0123456789abcdef0123"


def load(otel: str) -> OtelConfig:
    return parse_config(
        f"settings:\n  encryption_key: {KEY}\n  otel: {otel}\n", environ={"TOKEN": "t0k"}
    ).settings.otel


def problems(otel: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load(otel)
    return info.value.problems


def test_defaults_are_off() -> None:
    otel = load("{}")
    assert otel == OtelConfig()
    assert (otel.enabled, otel.protocol, otel.sample_rate, otel.service_name) == (
        False,
        "http/protobuf",
        1.0,
        "voidllm",
    )
    assert (otel.queue_size, otel.batch_size, otel.export_interval, otel.export_timeout) == (
        2048,
        512,
        1.0,
        10.0,
    )


def test_a_full_section_loads_with_interpolated_headers() -> None:
    otel = load(
        "{enabled: true, endpoint: 'https://collector:4318', protocol: http/protobuf, "
        "headers: {authorization: 'Bearer ${TOKEN}'}, sample_rate: 0.25, service_name: gw, "
        "queue_size: 100, batch_size: 10, export_interval: 500ms, export_timeout: 3s}"
    )
    assert otel.headers == {"authorization": "Bearer t0k"}
    assert (otel.sample_rate, otel.export_interval, otel.export_timeout) == (0.25, 0.5, 3.0)


@pytest.mark.parametrize(
    ("otel", "problem"),
    [
        ("{colour: x}", "settings.otel.colour: unknown key"),
        ("{sample_ratio: 1}", "settings.otel.sample_ratio: unknown key (did you mean 'sample_rate'?)"),
        ("{sample_rate: 1.5}", "settings.otel.sample_rate: must be between 0 and 1 (got 1.5)"),
        ("{sample_rate: -0.1}", "settings.otel.sample_rate: must be between 0 and 1 (got -0.1)"),
        ("{protocol: http}", "settings.otel.protocol: must be one of http/protobuf, grpc"),
        ("{queue_size: 0}", "settings.otel.queue_size: must be between 1 and 1000000 (got 0)"),
        ("{batch_size: 0}", "settings.otel.batch_size: must be between 1 and 100000 (got 0)"),
        ("{export_timeout: 0s}", "settings.otel.export_timeout: must be between 100ms and 5m (got 0s)"),
        ("{enabled: yes please}", "settings.otel.enabled: expected true or false, got a string"),
        ("{headers: [a]}", "settings.otel.headers: expected a mapping, got a list"),
        ("{headers: {'a b': c}}", "settings.otel.headers: 'a b' is not an HTTP header name"),
        (
            "{headers: {a: 1}}",
            "settings.otel.headers: expected a string, got an integer (put the value in quotes)",
        ),
        ("{service_name: ''}", "settings.otel.service_name: must not be empty"),
        (
            "{endpoint: 'collector:4318'}",
            "settings.otel.endpoint: must be an http:// or https:// URL for protocol http/protobuf",
        ),
        (
            "{endpoint: 'not a host', protocol: grpc}",
            "settings.otel.endpoint: must be host:port or an http:// or https:// URL for protocol grpc",
        ),
    ],
)
def test_strict(otel: str, problem: str) -> None:
    assert problems(otel) == (problem,)


def test_traces_path_is_appended_only_without_a_path() -> None:
    assert traces_url("") == "http://localhost:4318/v1/traces"
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/otlp/v1/traces") == "http://c:4318/otlp/v1/traces"


def _exporter(otel: str) -> Any:
    return build_exporter(load(otel))


def test_http_exporter_is_built_with_the_settings() -> None:
    exporter = _exporter("{endpoint: 'http://c:4318', headers: {x-key: v}, export_timeout: 2s}")
    try:
        assert isinstance(exporter, HttpExporter)
        assert exporter._endpoint == "http://c:4318/v1/traces"
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]


def test_grpc_exporter_is_built_with_the_settings() -> None:
    exporter = _exporter("{protocol: grpc, insecure: true, endpoint: 'collector:4317', export_timeout: 2s}")
    try:
        assert isinstance(exporter, GrpcExporter)
        assert exporter._endpoint == "collector:4317"
        assert exporter._timeout == 2.0
    finally:
        exporter.shutdown()
