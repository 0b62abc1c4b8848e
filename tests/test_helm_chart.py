"""The Helm chart (``deploy/helm/voidllm``), rendered by Helm itself and checked against Kubernetes' schemas.

Rendering uses Helm's own engine, offline: ``helm-python-sdk`` binds Helm v4's Go SDK (bundled in its wheel)
through ctypes, so ``Chart.render`` is what ``helm template`` does, values.schema.json included, and
``lint`` is ``helm lint``. Every rendered manifest is validated with ``kubernetes-validate`` (the
Kubernetes OpenAPI schemas bundled in the package, strict: unknown fields fail) for the oldest Kubernetes the
chart allows (``kubeVersion`` in Chart.yaml) and the newest the package knows. Kinds those schemas do not
cover (the Prometheus Operator's ServiceMonitor, a CRD) are checked field by field against what the
operator needs. The rendered ``voidllm.yaml`` is parsed by the gateway's own configuration loader with the
environment the pod gets, so the chart cannot ship a configuration the gateway refuses; and one slow test
runs what the production release runs (the migration Job's command, then the gateway with the ConfigMap and
the pod's environment, on PostgreSQL and Redis) and asks the probes' paths.

Not checked here: a real cluster (none runs offline); the Bitnami PostgreSQL/Redis charts are not
dependencies (they cannot be fetched offline), the chart takes external DSNs.
"""

from __future__ import annotations

import base64
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import kubernetes_validate
import pytest
import trio
import yaml

from tests.process import spawn_gateway
from voidllm import __version__
from voidllm.config import parse_config

CHART = Path(__file__).resolve().parent.parent / "deploy" / "helm" / "voidllm"
PRODUCTION = CHART / "values-production.yaml"
KUBE_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
RELEASE = "voidllm"
NAMESPACE = "llm"
ENCRYPTION_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes
ADMIN_KEY = "a" * 40


def production_values() -> dict[str, Any]:
    loaded = yaml.safe_load(PRODUCTION.read_text())
    assert isinstance(loaded, dict)
    return loaded


def render(values: Mapping[str, Any] | None = None, *, upgrade: bool = False) -> dict[str, str]:
    """The chart's templates rendered by Helm for an install (or an upgrade), by template path."""
    with helm.Chart.load(str(CHART)) as chart:
        rendered: dict[str, str] = chart.render(
            dict(values or {}),
            name=RELEASE,
            namespace=NAMESPACE,
            is_install=not upgrade,
            is_upgrade=upgrade,
        )
    return rendered


def manifests(rendered: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object of a rendering (NOTES.txt and empty documents left out)."""
    found: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        found.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return found


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"{kind} {name or ''}: {len(matches)} rendered"
    return matches[0]


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def gateway_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["voidllm"]
    container: dict[str, Any] = containers[0]
    return container


def env_names(container: Mapping[str, Any]) -> dict[str, Any]:
    return {entry["name"]: entry.get("valueFrom", entry.get("value")) for entry in container["env"]}


def validate_all(objects: list[dict[str, Any]]) -> Iterator[str]:
    """Validate every object against the Kubernetes schemas; yield the kinds left to the caller (CRDs)."""
    for obj in objects:
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                yield obj["kind"]
                break
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{obj['kind']} {obj['metadata']['name']} on Kubernetes {version}: {exc}")


def check_service_monitor(objects: list[dict[str, Any]]) -> None:
    """A ServiceMonitor the Prometheus Operator can use: it selects the chart's Service by its labels, in
    the release's namespace, and scrapes /metrics on a port the Service names."""
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = one(objects, "Service")
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    spec = monitor["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints"}
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"


def config_of(objects: list[dict[str, Any]]) -> str:
    text: str = one(objects, "ConfigMap")["data"]["voidllm.yaml"]
    return text


def test_default_values_render_valid_manifests() -> None:
    objects = manifests(render())
    assert kinds(objects) == [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "ServiceAccount",
    ]
    assert list(validate_all(objects)) == []
    # SQLite on the data volume, one pod, replaced (not rolled) so two never open the file.
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    config = parse_config(config_of(objects), environ={"VOIDLLM_ENCRYPTION_KEY": ENCRYPTION_KEY})
    assert (config.database.driver, config.database.dsn) == ("sqlite", "/data/voidllm.db")
    assert (config.server.proxy.host, config.server.proxy.port) == ("0.0.0.0", 8080)
    # The generated encryption key is one the gateway accepts, and it survives uninstall.
    secret = one(objects, "Secret")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    generated = base64.b64decode(secret["data"]["encryption-key"]).decode()
    parse_config(config_of(objects), environ={"VOIDLLM_ENCRYPTION_KEY": generated})
    assert len(base64.b64decode(generated)) == 32


def test_production_values_render_valid_manifests() -> None:
    objects = manifests(render(production_values()))
    assert kinds(objects) == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]
    assert list(validate_all(objects)) == ["ServiceMonitor"]
    check_service_monitor(objects)
    # Every secret comes from the operator's Secret: the chart creates none, not even for the migration.
    container = gateway_container(objects)
    env = env_names(container)
    for variable, key in (
        ("VOIDLLM_ENCRYPTION_KEY", "encryption-key"),
        ("VOIDLLM_ADMIN_KEY", "admin-key"),
        ("VOIDLLM_DATABASE_DSN", "database-dsn"),
        ("VOIDLLM_REDIS_URL", "redis-url"),
    ):
        assert env[variable]["secretKeyRef"]["name"] == "voidllm-secrets"
        assert env[variable]["secretKeyRef"]["key"] == key
    assert env["VOIDLLM_CONFIG"] == "/etc/voidllm/voidllm.yaml"
    # The gateway accepts the rendered configuration with the environment the pod gets.
    config = parse_config(
        config_of(objects),
        environ={
            "VOIDLLM_ENCRYPTION_KEY": ENCRYPTION_KEY,
            "VOIDLLM_DATABASE_DSN": "postgresql://voidllm:pw@db:5432/voidllm",
            "VOIDLLM_REDIS_URL": "redis://redis:6379/0",
            "OPENAI_API_KEY": "sk-test",
        },
    )
    assert config.database.driver == "postgres"
    assert config.redis.enabled
    assert config.redis.url == "redis://redis:6379/0"
    assert config.server.workers == 2
    # Scaled by the autoscaler (no fixed replica count to fight it), rolled without losing capacity.
    deployment = one(objects, "Deployment")
    assert "replicas" not in deployment["spec"]
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert one(objects, "PodDisruptionBudget")["spec"] == {
        "minAvailable": 2,
        "selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
    }
    ingress = one(objects, "Ingress")
    assert ingress["spec"]["tls"] == [{"secretName": "voidllm-tls", "hosts": ["llm.example.com"]}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": one(objects, "Service")["metadata"]["name"], "port": {"name": "http"}}


@pytest.mark.parametrize("values", [{}, production_values()], ids=["default", "production"])
def test_helm_lint_passes(values: dict[str, Any]) -> None:
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] > 1] == []  # 1 is INFO ("icon is recommended")


@pytest.mark.parametrize("values", [{}, production_values()], ids=["default", "production"])
def test_pods_are_locked_down(values: dict[str, Any]) -> None:
    objects = manifests(render(values))
    pods = [one(objects, "Deployment")["spec"]["template"]["spec"]]
    pods += [o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Job"]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            # With a read-only root, the writable places are volumes.
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts
    assert {m["mountPath"] for m in gateway_container(objects)["volumeMounts"]} == {
        "/etc/voidllm",
        "/data",
        "/tmp",
    }
    assert gateway_container(objects)["resources"]["limits"]["memory"]


@pytest.mark.parametrize("values", [{}, production_values()], ids=["default", "production"])
def test_probes_and_graceful_shutdown(values: dict[str, Any]) -> None:
    objects = manifests(render(values))
    container = gateway_container(objects)
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert [p["containerPort"] for p in container["ports"]] == [8080]
    # The kubelet waits for the preStop pause and then the whole drain before it kills the gateway.
    config = yaml.safe_load(config_of(objects))
    drain = int(config["server"]["proxy"]["drain_timeout"].removesuffix("s"))
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = one(objects, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pause > 0
    assert grace > pause + drain
    merged = {**yaml.safe_load((CHART / "values.yaml").read_text())["drain"], **values.get("drain", {})}
    assert (drain, pause) == (merged["timeoutSeconds"], merged["preStopSeconds"])


def test_drain_values_flow_into_the_config_and_the_grace_period() -> None:
    objects = manifests(render({"drain": {"timeoutSeconds": 90, "preStopSeconds": 15, "marginSeconds": 5}}))
    config = parse_config(config_of(objects), environ={"VOIDLLM_ENCRYPTION_KEY": ENCRYPTION_KEY})
    assert config.server.proxy.drain_timeout == 90
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 110
    assert spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] == 15


def test_migration_job_runs_before_install_and_upgrade() -> None:
    """On PostgreSQL the schema is migrated by a hook Job before any new pod starts. At the first install the
    release's own Secret does not exist yet, so the hook brings its own, created first."""
    values = {
        "replicaCount": 2,
        "database": {"driver": "postgres", "dsn": "postgresql://voidllm:pw@db:5432/voidllm"},
        "secrets": {"adminKey": ADMIN_KEY},
    }
    for upgrade in (False, True):
        objects = manifests(render(values, upgrade=upgrade))
        assert list(validate_all(objects)) == []
        job = one(objects, "Job")
        hook_secret = one(objects, "Secret", f"{RELEASE}-migration")
        for obj in (job, hook_secret):
            annotations = obj["metadata"]["annotations"]
            assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
            assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
        assert int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
            job["metadata"]["annotations"]["helm.sh/hook-weight"]
        )
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        assert "serviceAccountName" not in pod  # the release's account is not there at the first install
        (container,) = pod["containers"]
        assert container["command"] == ["voidllm", "migrate-schema"]
        env = env_names(container)
        assert env["VOIDLLM_DATABASE_DRIVER"] == "postgres"
        assert env["VOIDLLM_DATABASE_DSN"]["secretKeyRef"] == {
            "name": f"{RELEASE}-migration",
            "key": "database-dsn",
        }
        assert set(env) == {"VOIDLLM_DATABASE_DRIVER", "VOIDLLM_DATABASE_DSN", "VOIDLLM_ENCRYPTION_KEY"}
        # The gateway's own Secret holds the DSN and the admin key; its pods roll one at a time.
        secret = one(objects, "Secret", RELEASE)
        assert set(secret["data"]) == {"encryption-key", "admin-key", "database-dsn"}
        assert env_names(gateway_container(objects))["VOIDLLM_ADMIN_KEY"]["secretKeyRef"]["name"] == RELEASE
    # SQLite: no Job (the single pod migrates its own file at start).
    assert "Job" not in kinds(manifests(render({})))


def test_given_secrets_are_used_as_given() -> None:
    objects = manifests(
        render(
            {
                "secrets": {"encryptionKey": ENCRYPTION_KEY, "adminKey": ADMIN_KEY},
                "redis": {"enabled": True, "url": "redis://redis:6379/0"},
            }
        )
    )
    data = {k: base64.b64decode(v).decode() for k, v in one(objects, "Secret")["data"].items()}
    assert data == {
        "encryption-key": ENCRYPTION_KEY,
        "admin-key": ADMIN_KEY,
        "redis-url": "redis://redis:6379/0",
    }
    env = env_names(gateway_container(objects))
    assert env["VOIDLLM_REDIS_URL"]["secretKeyRef"] == {"name": RELEASE, "key": "redis-url"}
    # No secret reaches the ConfigMap: the file names the variables.
    text = config_of(objects)
    for secret in (ENCRYPTION_KEY, ADMIN_KEY, "redis://redis"):
        assert secret not in text
    assert yaml.safe_load(text)["redis"] == {"enabled": True, "url": "${VOIDLLM_REDIS_URL}"}


def test_persistence_claims_a_volume_for_the_data() -> None:
    objects = manifests(render({"persistence": {"enabled": True, "size": "5Gi"}}))
    assert list(validate_all(objects)) == []
    claim = one(objects, "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    volumes = {v["name"]: v for v in one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"replicaCount": 2}, "database.driver"),
        ({"autoscaling": {"enabled": True}}, "database.driver"),
        ({"database": {"driver": "postgres"}}, "database.dsn"),
        ({"database": {"driver": "mysql"}}, "database"),
        ({"redis": {"enabled": True}}, "redis.url"),
        ({"secrets": {"adminKey": "short"}}, "secrets.adminKey"),
        ({"config": {"settings": {"encryption_key": ENCRYPTION_KEY}}}, "config.settings.encryption_key"),
        ({"config": {"server": {"proxy": {"port": 9000}}}}, "config.server.proxy.port"),
        ({"config": {"database": {"dsn": "x.db"}}}, "config.database.dsn"),
        ({"config": {"server": {"admin": {"port": 9090}}}}, "config.server.admin"),
        ({"admin": {"port": 8080}}, "admin.port"),
        ({"admin": {"tlsSecret": "admin-tls"}}, "admin.tlsSecret"),
        ({"drain": {"timeoutSeconds": 300}}, "timeoutSeconds"),
        ({"replicas": 2}, "replicas"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
        ({"podDisruptionBudget": {"minAvailable": 1}}, "podDisruptionBudget"),
    ],
)
def test_bad_values_are_refused_naming_the_value(values: dict[str, Any], named: str) -> None:
    with pytest.raises(helm.HelmError) as raised:
        render(values)
    assert named in str(raised.value)


def test_the_chart_follows_the_gateway_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    image = gateway_container(manifests(render()))["image"]
    assert image == f"voidllm:{__version__}"


def pod_environment(container: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, str]:
    """The environment Kubernetes gives ``container``: plain values as written, each secretKeyRef resolved
    from ``secrets`` (by key; an optional reference to a missing key is left out, as the kubelet does)."""
    env: dict[str, str] = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        if ref["key"] in secrets:
            env[entry["name"]] = secrets[ref["key"]]
        else:
            assert ref.get("optional"), f"{entry['name']}: no key {ref['key']} in the Secret"
    return env


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.real_migrations  # the Job migrates an empty database, not the suite's migrated copy
async def test_production_release_migrates_serves_and_drains(
    tmp_path: Path, pg_dsn: str, redis_url: str
) -> None:
    """What the production release runs, on real processes: the migration Job's command with the Job's
    environment and no file, then the gateway (two workers) with the ConfigMap's voidllm.yaml and the pod's
    environment; the probes' paths answer 200, and SIGTERM drains it to a clean exit."""
    values = production_values()
    values["config"]["redis"] = {"key_prefix": f"helm-test-{tmp_path.name}:"}
    objects = manifests(render(values))
    secrets = {
        "encryption-key": ENCRYPTION_KEY,
        "admin-key": ADMIN_KEY,
        "database-dsn": pg_dsn,
        "redis-url": redis_url,
        "openai": "sk-test",  # extraEnv's provider key
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith("VOIDLLM_")}

    (job_container,) = one(objects, "Job")["spec"]["template"]["spec"]["containers"]
    command = [sys.executable, "-m", "voidllm", *job_container["command"][1:]]
    # The Job runs in the image, whose /etc/voidllm/voidllm.yaml the command finds by itself.
    image_config = CHART.parent.parent / "docker" / "voidllm.yaml"
    migrated = await trio.run_process(
        command,
        env={**base, **pod_environment(job_container, secrets), "VOIDLLM_CONFIG": str(image_config)},
        cwd=tmp_path,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr.decode()
    assert b"schema at revision" in migrated.stdout

    config_dir = tmp_path / "etc-voidllm"
    config_dir.mkdir()
    config_file = config_dir / "voidllm.yaml"
    config_file.write_text(config_of(objects))
    container = gateway_container(objects)
    env = pod_environment(container, secrets)
    env["VOIDLLM_CONFIG"] = str(config_file)  # mounted at /etc/voidllm in the pod
    # Only the listening address differs from the pod: loopback and a free port, for the test machine.
    async with (
        spawn_gateway(config_file, args=["--host", "127.0.0.1", "--port", "0"], env=env) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=10) as client,
    ):
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = container[probe]["httpGet"]["path"]
            assert (await client.get(path)).status_code == 200, probe
        models = await client.get("/v1/models", headers={"Authorization": f"Bearer {gateway.api_key}"})
        assert [m["id"] for m in models.json()["data"]] == ["gpt-4o-mini"]
        gateway.signal(signal.SIGTERM)
        assert await gateway.wait_exit() == 0


def test_notes_warn_about_processes_without_redis() -> None:
    warning = "more than one gateway process without Redis"
    assert warning not in render()["voidllm/templates/NOTES.txt"]
    assert warning in render({"config": {"server": {"workers": 2}}})["voidllm/templates/NOTES.txt"]
    assert warning not in render(production_values())["voidllm/templates/NOTES.txt"]
    # A config without a server section still renders (the workers default to 1).
    assert warning not in render({"config": {"server": None}})["voidllm/templates/NOTES.txt"]


def test_dual_port_mode_exposes_the_admin_port() -> None:
    """admin.port turns on server.admin: a second container and Service port named admin, HTTPS with the
    given TLS Secret mounted; the Ingress keeps pointing at the proxy port."""
    values = {**production_values(), "admin": {"port": 9090, "servicePort": 8443, "tlsSecret": "admin-tls"}}
    objects = manifests(render(values))
    assert list(validate_all(objects)) == ["ServiceMonitor"]
    config = parse_config(
        config_of(objects),
        environ={
            "VOIDLLM_ENCRYPTION_KEY": ENCRYPTION_KEY,
            "VOIDLLM_DATABASE_DSN": "postgresql://db/v",
            "VOIDLLM_REDIS_URL": "redis://redis:6379/0",
        },
    )
    assert config.server.admin.port == 9090
    assert config.server.admin.tls.enabled
    assert (config.server.admin.tls.cert, config.server.admin.tls.key) == (
        "/etc/voidllm-tls/tls.crt",
        "/etc/voidllm-tls/tls.key",
    )
    container = gateway_container(objects)
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8080, "admin": 9090}
    assert {"name": "admin-tls", "mountPath": "/etc/voidllm-tls", "readOnly": True} in container[
        "volumeMounts"
    ]
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "admin-tls", "secret": {"secretName": "admin-tls"}} in volumes
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in one(objects, "Service")["spec"]["ports"]}
    assert ports == {"http": (80, "http"), "admin": (8443, "admin")}
    backend = one(objects, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["port"] == {"name": "http"}
    # Probes and scrapes stay on the proxy port, which serves health and /metrics in both modes.
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    assert [e["port"] for e in one(objects, "ServiceMonitor")["spec"]["endpoints"]] == ["http"]
