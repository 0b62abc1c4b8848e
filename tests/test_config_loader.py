"""voidllm.config: discovery, environment fallbacks, error reporting, the example file, the public API."""

from __future__ import annotations

import pickle
import pkgutil
import re
import textwrap
from pathlib import Path

import attrs
import pytest

import voidllm.config
from voidllm.config import (
    CodeModeConfig,
    Config,
    ConfigError,
    DatabaseConfig,
    MCPConfig,
    ProxyServerConfig,
    ServerConfig,
    SettingsConfig,
    find_config_path,
    load_config,
    parse_config,
)

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes
OTHER_KEY = "another passphrase of enough length"
EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), environ={"VOIDLLM_ENCRYPTION_KEY": KEY})
    return info.value.problems


# --- discovery ----------------------------------------------------------------------------------------------


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_path_wins_over_env_and_working_directory(in_tmp: Path) -> None:
    cli = write(in_tmp / "cli.yaml", "")
    env = write(in_tmp / "env.yaml", "")
    write(in_tmp / "voidllm.yaml", "")
    assert find_config_path(str(cli), {"VOIDLLM_CONFIG": str(env)}) == cli


def test_env_path_wins_over_working_directory(in_tmp: Path) -> None:
    env = write(in_tmp / "conf" / "env.yaml", "")
    write(in_tmp / "voidllm.yaml", "")
    assert find_config_path(None, {"VOIDLLM_CONFIG": str(env)}) == env


def test_relative_paths_are_made_absolute(in_tmp: Path) -> None:
    write(in_tmp / "conf" / "env.yaml", "")
    assert find_config_path("conf/env.yaml", {}) == in_tmp / "conf" / "env.yaml"


def test_working_directory_file_is_found(in_tmp: Path) -> None:
    local = write(in_tmp / "voidllm.yaml", "")
    assert find_config_path(None, {}) == local
    assert find_config_path("", {"VOIDLLM_CONFIG": ""}) == local


def test_system_path_is_the_last_candidate(in_tmp: Path) -> None:
    system = write(in_tmp / "etc" / "voidllm" / "voidllm.yaml", "")
    candidates = (Path("voidllm.yaml"), system)
    assert find_config_path(None, {}, candidates=candidates) == system
    local = write(in_tmp / "voidllm.yaml", "")
    assert find_config_path(None, {}, candidates=candidates) == local


def test_default_candidates() -> None:
    expected = (Path("voidllm.yaml"), Path("/etc/voidllm/voidllm.yaml"))
    assert voidllm.config.loader.DEFAULT_CANDIDATES == expected


def test_no_file_means_none(in_tmp: Path) -> None:
    candidates = (Path("voidllm.yaml"), in_tmp / "etc" / "voidllm.yaml")
    assert find_config_path(None, {}, candidates=candidates) is None


def test_missing_cli_path_is_an_error_not_a_fall_through(in_tmp: Path) -> None:
    write(in_tmp / "voidllm.yaml", "")
    with pytest.raises(ConfigError) as info:
        find_config_path("nope.yaml", {})
    assert info.value.problems == (f"--config: {in_tmp / 'nope.yaml'} does not exist",)


def test_missing_env_path_is_an_error(in_tmp: Path) -> None:
    write(in_tmp / "voidllm.yaml", "")
    with pytest.raises(ConfigError) as info:
        find_config_path(None, {"VOIDLLM_CONFIG": str(in_tmp / "gone.yaml")})
    assert info.value.problems == (f"VOIDLLM_CONFIG: {in_tmp / 'gone.yaml'} does not exist",)


def test_directory_is_not_a_config_file(in_tmp: Path) -> None:
    (in_tmp / "dir").mkdir()
    with pytest.raises(ConfigError, match="is not a file"):
        find_config_path(str(in_tmp / "dir"), {})


def test_load_config_reads_the_discovered_file(in_tmp: Path) -> None:
    write(in_tmp / "voidllm.yaml", "server:\n  proxy:\n    port: 9999\n")
    cfg = load_config(environ={"VOIDLLM_ENCRYPTION_KEY": KEY})
    assert cfg.server.proxy.port == 9999


def test_load_config_uses_os_environ_by_default(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(in_tmp / "custom.yaml", "logging:\n  level: ${LOG_LEVEL}\n")
    monkeypatch.setenv("VOIDLLM_CONFIG", str(path))
    monkeypatch.setenv("VOIDLLM_ENCRYPTION_KEY", KEY)
    monkeypatch.setenv("LOG_LEVEL", "error")
    assert load_config().logging.level == "error"


def test_load_config_names_the_file_in_errors(in_tmp: Path) -> None:
    path = write(in_tmp / "voidllm.yaml", "server:\n  workers: 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ={"VOIDLLM_ENCRYPTION_KEY": KEY})
    assert info.value.source == str(path)
    assert info.value.problems == ("server.workers: must be >= 1 (got 0)",)


# --- environment --------------------------------------------------------------------------------------------


def test_env_only_startup_uses_defaults_and_the_four_variables(in_tmp: Path) -> None:
    environ = {
        "VOIDLLM_ADMIN_KEY": "a" * 40,
        "VOIDLLM_ENCRYPTION_KEY": KEY,
        "VOIDLLM_DATABASE_DSN": "postgresql://gw@db/gw",
        "VOIDLLM_DATABASE_DRIVER": "postgres",
    }
    cfg = load_config(environ=environ)
    assert cfg.settings.admin_key == "a" * 40
    assert cfg.settings.encryption_key == KEY
    assert (cfg.database.driver, cfg.database.dsn) == ("postgres", "postgresql://gw@db/gw")
    assert cfg.server.proxy.port == 8080


def test_env_only_startup_infers_postgres_from_the_dsn(in_tmp: Path) -> None:
    cfg = load_config(environ={"VOIDLLM_ENCRYPTION_KEY": KEY, "VOIDLLM_DATABASE_DSN": "postgres://gw@db/gw"})
    assert cfg.database.driver == "postgres"


def test_env_only_startup_defaults_to_sqlite(in_tmp: Path) -> None:
    cfg = load_config(environ={"VOIDLLM_ENCRYPTION_KEY": KEY})
    assert (cfg.database.driver, cfg.database.dsn) == ("sqlite", "voidllm.db")


def test_env_only_startup_without_encryption_key_fails(in_tmp: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={})
    assert info.value.source == "environment"
    assert info.value.problems == (
        "settings.encryption_key: required; set it here or in VOIDLLM_ENCRYPTION_KEY",
    )


def test_env_fills_values_the_file_leaves_empty(in_tmp: Path) -> None:
    write(in_tmp / "voidllm.yaml", 'settings:\n  admin_key: ""\ndatabase:\n  max_open_conns: 3\n')
    environ = {
        "VOIDLLM_ENCRYPTION_KEY": KEY,
        "VOIDLLM_ADMIN_KEY": "b" * 32,
        "VOIDLLM_DATABASE_DSN": "/srv/gw.db",
    }
    cfg = load_config(environ=environ)
    assert cfg.settings.admin_key == "b" * 32
    assert cfg.settings.encryption_key == KEY
    assert (cfg.database.dsn, cfg.database.max_open_conns) == ("/srv/gw.db", 3)


def test_file_values_win_over_env(in_tmp: Path) -> None:
    write(
        in_tmp / "voidllm.yaml",
        f"settings:\n  encryption_key: {OTHER_KEY}\ndatabase:\n  driver: sqlite\n  dsn: /srv/file.db\n",
    )
    environ = {
        "VOIDLLM_ENCRYPTION_KEY": KEY,
        "VOIDLLM_DATABASE_DSN": "postgres://x/y",
        "VOIDLLM_DATABASE_DRIVER": "postgres",
    }
    cfg = load_config(environ=environ)
    assert cfg.settings.encryption_key == OTHER_KEY
    assert (cfg.database.driver, cfg.database.dsn) == ("sqlite", "/srv/file.db")


def test_env_dsn_selects_postgres_when_the_file_sets_no_driver() -> None:
    cfg = parse_config(
        "database:\n  max_idle_conns: 1\n",
        environ={"VOIDLLM_ENCRYPTION_KEY": KEY, "VOIDLLM_DATABASE_DSN": "postgresql://gw@db/gw"},
    )
    assert (cfg.database.driver, cfg.database.dsn) == ("postgres", "postgresql://gw@db/gw")


# --- error reporting ----------------------------------------------------------------------------------------


def test_unrelated_errors_are_reported_together() -> None:
    found = problems_of(
        """\
        server:
          proxy:
            port: "8080"
        models:
          - name: a
            provider: openai
            base_url: http://a
          - name: b
            provider: openai
            base_url: http://b
          - name: c
            strategy: weighted
            deployments:
              - {name: x, provider: openai, base_url: "http://x", weight: 1}
              - {name: y, provider: openai, base_url: "http://y", weight: -3}
        logging:
          level: loud
        """
    )
    assert found == (
        "server.proxy.port: expected an integer, got a string",
        "models[2].deployments[1].weight: must be >= 0 (got -3)",
        "logging.level: must be one of debug, info, warn, error (got 'loud')",
    )


def test_structural_value_and_document_errors_are_combined() -> None:
    found = problems_of(
        """\
        server:
          proxy:
            drain_timeout: 1s
        models:
          - {name: a, provider: openai, base_url: "http://a", fallback: b, timeout: soon}
          - {name: b, provider: openai, base_url: "http://b", fallback: a}
        mcp_servers:
          - {name: one, alias: dup, url: "https://one"}
          - {name: two, alias: dup, url: "https://two", auth_type: header}
        """
    )
    assert found == (
        "server.proxy.drain_timeout: must be between 5s and 2m (got 1s)",
        "models[0].timeout: invalid duration 'soon': expected a duration such as 30s, 5m, 1h30m or 7d",
        "mcp_servers[1].auth_header: required when auth_type is 'header'",
        "models[0].fallback: fallback chain forms a cycle: a -> b -> a",
        "mcp_servers[1].alias: duplicate alias 'dup' (see mcp_servers[0])",
    )


def test_config_error_lists_problems_one_per_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("server:\n  workers: 0\nlogging:\n  format: xml\n", environ={})
    error = info.value
    assert isinstance(error, ValueError)
    assert str(error).splitlines() == list(error.problems)
    assert error.problems == (
        "server.workers: must be >= 1 (got 0)",
        "logging.format: must be one of json, text (got 'xml')",
        "settings.encryption_key: required; set it here or in VOIDLLM_ENCRYPTION_KEY",
    )


def test_unknown_keys_with_suggestions_at_every_depth() -> None:
    found = problems_of(
        """\
        servr:
          workers: 2
        server:
          proxy:
            drain_timout: 30s
        models:
          - name: m
            strategy: priority
            deployments:
              - {name: a, provider: openai, base_url: "http://a"}
              - {name: b, provider: openai, base_url: "http://b", wieght: 2}
        settings:
          mcp:
            code_mode:
              pool_sise: 4
              completely_unrelated: 1
        """
    )
    assert found == (
        "server.proxy.drain_timout: unknown key (did you mean 'drain_timeout'?)",
        "models[0].deployments[1].wieght: unknown key (did you mean 'weight'?)",
        "settings.mcp.code_mode.completely_unrelated: unknown key",
        "settings.mcp.code_mode.pool_sise: unknown key (did you mean 'pool_size'?)",
        "servr: unknown key (did you mean 'server'?)",
    )


def test_several_unknown_keys_in_one_mapping_are_each_reported() -> None:
    assert problems_of("logging:\n  levl: info\n  formt: text\n") == (
        "logging.formt: unknown key (did you mean 'format'?)",
        "logging.levl: unknown key (did you mean 'level'?)",
    )


# --- the example file ---------------------------------------------------------------------------------------


def test_example_file_loads_with_the_quick_start_environment() -> None:
    cfg = parse_config(EXAMPLE.read_text(encoding="utf-8"), environ={"VOIDLLM_ENCRYPTION_KEY": KEY})
    assert cfg.server.proxy.host == "127.0.0.1"
    assert (cfg.database.driver, cfg.database.dsn) == ("sqlite", "./data/voidllm.db")
    assert cfg.settings.encryption_key == KEY
    assert cfg.settings.admin_key == ""
    assert [(m.name, m.provider, m.aliases) for m in cfg.models] == [("demo", "mock", ("default",))]
    assert attrs.evolve(cfg, models=()) == Config(
        server=ServerConfig(proxy=ProxyServerConfig(host="127.0.0.1")),
        database=DatabaseConfig(driver="sqlite", dsn="./data/voidllm.db"),
        settings=SettingsConfig(encryption_key=KEY, mcp=MCPConfig(code_mode=CodeModeConfig(enabled=True))),
    ), (
        "apart from the host, the database path, the keys, the demo model and Code Mode,"
        " the example shows the defaults"
    )


def test_a_configuration_with_every_section_set_pickles() -> None:
    """``server.workers`` > 1 pickles the configuration for each worker process: every value in it must."""
    text = (
        "settings:\n  guard: {detectors: {pii: redact, jwt: block}, responses: true}\n"
        "  otel: {enabled: true, headers: {authorization: x}}\n"
        "  sso: {enabled: true, issuer: 'https://op.example', client_id: c, client_secret: s,"
        " default_org_slug: acme, allowed_domains: [acme.test]}\n"
    )
    cfg = parse_config(EXAMPLE.read_text(encoding="utf-8"), environ={"VOIDLLM_ENCRYPTION_KEY": KEY})
    extra = parse_config(text, environ={"VOIDLLM_ENCRYPTION_KEY": KEY})
    cfg = attrs.evolve(
        cfg,
        settings=attrs.evolve(
            cfg.settings, guard=extra.settings.guard, otel=extra.settings.otel, sso=extra.settings.sso
        ),
    )
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def test_example_file_takes_its_secrets_from_the_environment() -> None:
    environ = {
        "VOIDLLM_ENCRYPTION_KEY": KEY,
        "VOIDLLM_ADMIN_KEY": "c" * 32,
        "VOIDLLM_DATABASE_DSN": "/srv/x.db",
    }
    cfg = parse_config(EXAMPLE.read_text(encoding="utf-8"), environ=environ)
    assert (cfg.settings.admin_key, cfg.database.dsn) == ("c" * 32, "/srv/x.db")


def test_example_file_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    written = set(re.findall(r"^[# ]*-? *([a-z_0-9]+):", text, flags=re.MULTILINE))
    expected = set()
    for cls in _config_classes():
        expected |= {field.name for field in cls.__attrs_attrs__}
    assert expected - written == set()


def test_example_models_and_mcp_servers_are_valid_when_uncommented() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    active = lines.index("models:")  # the shipped demo model gives way to the documented example
    lines = lines[:active] + lines[lines.index("# models:", active) :]
    uncommented: list[str] = []
    in_block = False
    for line in lines:
        if line in ("# models:", "# mcp_servers:"):
            in_block = True
            uncommented.append(line[2:])
        elif in_block and line.startswith("#  "):
            uncommented.append(line[2:])  # the nested deployment example stays a comment
        else:
            in_block = False
            if line not in ("models: []", "mcp_servers: []"):
                uncommented.append(line)
    environ = {"VOIDLLM_ENCRYPTION_KEY": KEY, "OPENAI_API_KEY": "sk-1"}
    with pytest.raises(ConfigError) as info:
        parse_config("\n".join(uncommented), environ=environ)
    assert info.value.problems == ("models[0].fallback: unknown model 'claude-sonnet'",)


# --- public API ---------------------------------------------------------------------------------------------


def _config_classes() -> list[type]:
    return [obj for obj in vars(voidllm.config).values() if isinstance(obj, type) and attrs.has(obj)]


def test_exports_match_the_public_names() -> None:
    public = {name for name in vars(voidllm.config) if not name.startswith("_")}
    # the submodules are attributes of the package once anything imported them (which test ran before
    # this one in the same process decides which), so all of them are left out, imported or not
    modules = {info.name for info in pkgutil.iter_modules(voidllm.config.__path__)}
    assert set(voidllm.config.__all__) == public - modules
    assert {
        "Config",
        "ConfigError",
        "find_config_path",
        "load_config",
        "parse_config",
        "parse_duration",
        "parse_size",
    } <= set(voidllm.config.__all__)


def test_config_classes_are_frozen_and_slotted() -> None:
    classes = _config_classes()
    assert len(classes) == 28
    for cls in classes:
        assert "__slots__" in vars(cls), cls
        assert cls.__setattr__ is not object.__setattr__, cls
