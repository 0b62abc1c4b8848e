"""Finding, reading and checking ``voidllm.yaml``.

Discovery (:func:`find_config_path`), first match wins:

1. the path given on the command line (``voidllm serve --config PATH``);
2. the path in the environment variable ``VOIDLLM_CONFIG``;
3. ``./voidllm.yaml`` in the working directory;
4. ``/etc/voidllm/voidllm.yaml``.

A path given in 1 or 2 must exist: a typo there is an error, never a silent fall-through to the next place.
When no file is found the gateway starts from the defaults plus the environment.

Environment fallbacks apply with or without a file, to a value the file leaves unset or empty:

- ``VOIDLLM_ADMIN_KEY`` → ``settings.admin_key``
- ``VOIDLLM_ENCRYPTION_KEY`` → ``settings.encryption_key``
- ``VOIDLLM_DATABASE_DSN`` → ``database.dsn``
- ``VOIDLLM_DATABASE_DRIVER`` → ``database.driver``

A value written in the file wins over the variable. Then, if ``database.driver`` is still unset, it becomes
``postgres`` for a ``postgres://``/``postgresql://`` DSN and ``sqlite`` otherwise. ``${VAR}`` interpolation
inside the file is separate (see ``yamlread.py``).

The proxy listener is the exception, because an operator moves a port at start-up without editing a file
(:func:`with_listen_overrides`): ``voidllm serve --host/--port`` wins, then ``VOIDLLM_HOST`` /
``VOIDLLM_PORT``, then the file.

Loading runs in one pass and reports every problem at once (:class:`ConfigError`): YAML syntax errors stop
early (there is nothing to check without a document); otherwise type errors, unknown keys, value rules,
object rules and document rules are all collected, each prefixed with its key path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import cattrs
import yaml

from voidllm.config.codec import converter, describe_error
from voidllm.config.errors import ConfigError
from voidllm.config.models import Config
from voidllm.config.upstreams import DEMO_BASE_URL
from voidllm.config.validate import check_document
from voidllm.config.yamlread import read_yaml
from voidllm.providers.registry import PROVIDERS

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CANDIDATES",
    "find_config_path",
    "load_config",
    "parse_config",
    "with_listen_overrides",
]

CONFIG_ENV = "VOIDLLM_CONFIG"
DEFAULT_CANDIDATES = (Path("voidllm.yaml"), Path("/etc/voidllm/voidllm.yaml"))
_ENV_FALLBACKS = (
    ("VOIDLLM_ADMIN_KEY", "settings", "admin_key"),
    ("VOIDLLM_ENCRYPTION_KEY", "settings", "encryption_key"),
    ("VOIDLLM_DATABASE_DSN", "database", "dsn"),
    ("VOIDLLM_DATABASE_DRIVER", "database", "driver"),
)
_POSTGRES_SCHEMES = ("postgres://", "postgresql://")
_MAX_PORT = 65535


def find_config_path(
    cli_path: str | None, environ: Mapping[str, str], *, candidates: Sequence[Path] = DEFAULT_CANDIDATES
) -> Path | None:
    """The config file to load, or ``None`` to start from defaults and the environment.

    Raises:
        ConfigError: ``cli_path`` or ``VOIDLLM_CONFIG`` names a file that does not exist.
    """
    for origin, given in (("--config", cli_path), (CONFIG_ENV, environ.get(CONFIG_ENV))):
        if given:
            path = Path(given).absolute()
            if not path.is_file():
                reason = "is not a file" if path.exists() else "does not exist"
                raise ConfigError([f"{origin}: {path} {reason}"], source=str(path))
            return path
    return next((path.absolute() for path in candidates if path.is_file()), None)


def load_config(cli_path: str | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Find, read and check the configuration (see the module docstring for the order and the fallbacks).

    Args:
        cli_path: the ``--config`` argument, if any.
        environ: the environment to read; ``os.environ`` when not given.

    Raises:
        ConfigError: the file is missing, unreadable or invalid; ``problems`` lists every reason.
    """
    env = os.environ if environ is None else environ
    path = find_config_path(cli_path, env)
    if path is None:
        return _build({}, env, source="environment")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read the file ({exc})"], source=str(path)) from exc
    return parse_config(text, environ=env, source=str(path))


def parse_config(text: str, *, environ: Mapping[str, str], source: str | None = None) -> Config:
    """Parse and check the text of a ``voidllm.yaml``, interpolating and falling back to ``environ``.

    Raises:
        ConfigError: the text is not YAML or does not describe a valid configuration.
    """
    try:
        document = read_yaml(text, environ)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], source=source) from None
    return _build({} if document is None else document, environ, source)


def _build(document: Any, environ: Mapping[str, str], source: str | None) -> Config:
    if isinstance(document, Mapping):
        document = _with_environment(document, environ)
    problems: list[str] = []
    config: Config | None = None
    try:
        config = converter.structure(document, Config)
    except (cattrs.BaseValidationError, ValueError) as exc:
        problems += describe_error(exc)
    if isinstance(document, Mapping):
        problems += check_document(document)
    if problems or config is None:
        raise ConfigError(problems, source=source)
    return config


def _unset(section: Any, key: str) -> bool:
    return section is None or (isinstance(section, Mapping) and section.get(key) in (None, ""))


def _is_demo(name: object) -> bool:
    """Whether a raw ``provider`` value names the built-in demo provider."""
    provider = PROVIDERS.get(name) if isinstance(name, str) else None
    return provider is not None and provider.builtin_demo


def _with_demo_urls(models: Any) -> Any:
    """Raw model entries with ``provider: mock`` (and such deployments) given the demo URL when they name no
    ``base_url``: the built-in demo provider needs none."""
    if not isinstance(models, list):
        return models

    def filled(entry: Any) -> Any:
        if isinstance(entry, Mapping) and _is_demo(entry.get("provider")) and not entry.get("base_url"):
            return {**entry, "base_url": DEMO_BASE_URL}
        return entry

    result = []
    for model in models:
        model = filled(model)
        if isinstance(model, Mapping) and isinstance(model.get("deployments"), list):
            model = {**model, "deployments": [filled(d) for d in model["deployments"]]}
        result.append(model)
    return result


def _with_environment(document: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply the four environment fallbacks and the driver inference to a copy of the raw document, and
    the demo provider's URL (:func:`_with_demo_urls`)."""
    result = dict(document)
    if "models" in result:
        result["models"] = _with_demo_urls(result["models"])
    for variable, section, key in _ENV_FALLBACKS:
        if environ.get(variable) and _unset(result.get(section), key):
            result[section] = {**result.get(section, {}), key: environ[variable]}
    database = result.get("database")
    if _unset(database, "driver"):
        dsn = (database or {}).get("dsn")
        postgres = isinstance(dsn, str) and dsn.startswith(_POSTGRES_SCHEMES)
        result["database"] = {**(database or {}), "driver": "postgres" if postgres else "sqlite"}
    return result


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is None or problem is None:
        return f"invalid YAML: {error}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def with_listen_overrides(
    config: Config, *, host: str | None, port: str | None, environ: Mapping[str, str] | None = None
) -> Config:
    """``config`` with the proxy listener's host and port taken from the command line (``host``, ``port``),
    else from ``VOIDLLM_HOST`` / ``VOIDLLM_PORT``, else left as the file says.

    Raises:
        ConfigError: a port that is not a whole number in 0..65535 or is the admin port, or an empty host.
    """
    env = os.environ if environ is None else environ
    proxy = config.server.proxy
    problems: list[str] = []
    chosen_host = _first_given(("--host", host), ("VOIDLLM_HOST", env.get("VOIDLLM_HOST")))
    chosen_port = _first_given(("--port", port), ("VOIDLLM_PORT", env.get("VOIDLLM_PORT")))
    if chosen_host is not None:
        origin, value = chosen_host
        if not value.strip():
            problems.append(f"{origin}: must not be empty")
        proxy = attrs.evolve(proxy, host=value.strip())
    if chosen_port is not None:
        origin, value = chosen_port
        number = value.strip()
        if not number.isdigit() or int(number) > _MAX_PORT:
            problems.append(f"{origin}: must be a port number 0..{_MAX_PORT}, got {value!r}")
        elif int(number) and int(number) == config.server.admin.port:
            problems.append(f"{origin}: must differ from server.admin.port ({number})")
        else:
            proxy = attrs.evolve(proxy, port=int(number))
    if problems:
        raise ConfigError(problems, source="command line")
    return attrs.evolve(config, server=attrs.evolve(config.server, proxy=proxy))


def _first_given(*candidates: tuple[str, str | None]) -> tuple[str, str] | None:
    return next(((origin, value) for origin, value in candidates if value is not None), None)
