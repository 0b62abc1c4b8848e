"""Models and deployments through the admin API, against a real gateway and real mock upstreams: the running
registry follows every write at once, provider keys are write-only and sealed to their row, config models are
read-only, and validation answers in the error envelope. The use case's validation (conflicts, fallbacks,
strategies) is tested on :mod:`voidllm.admin.models` directly on each dialect (``tests/admin_fixtures.py``).
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa

from tests.admin_fixtures import AdminWorld
from tests.gateway import RunningGateway, make_config, model_yaml, run_gateway
from tests.test_admin_access import make_key
from voidllm.admin import models
from voidllm.crypto import aad_for
from voidllm.errors import BadRequestError, ConflictError, NotFoundError
from voidllm.store import tables as t
from voidllm.testing.mock_openai import Behaviour, open_mock_upstream

DEAD_URL = "http://127.0.0.1:9/v1"  # discard port: nothing listens


def admin(gw: RunningGateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.api_key()}"}


async def create_model(gw: RunningGateway, **body: Any) -> dict[str, Any]:
    response = await gw.client.post("/api/v1/models", headers=admin(gw), json={"provider": "openai", **body})
    assert response.status_code == 201, response.text
    return response.json()


async def chat(gw: RunningGateway, model: str, key: str | None = None) -> httpx.Response:
    return await gw.client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key or gw.api_key()}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
    )


async def row(gw: RunningGateway, table: sa.Table, row_id: str) -> dict[str, Any]:
    return await gw.state.store.run(
        lambda conn: dict(conn.execute(sa.select(table).where(table.c.id == row_id)).mappings().one())
    )


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


async def test_a_model_created_through_the_api_serves_the_sdk_at_once_with_its_sealed_key(
    sqlite_dsn: str,
) -> None:
    async with open_mock_upstream() as mock, run_gateway(make_config(sqlite_dsn)) as gw:
        created = await create_model(
            gw,
            name="api-gpt",
            base_url=mock.base_url,
            api_key="sk-provider-key-0042",
            aliases=["apg"],
            input_price_per_1m=1.5,
            timeout="45s",
        )
        assert "sk-provider-key-0042" not in str(created)
        assert (created["has_api_key"], created["source"], created["is_active"]) == (True, "api", True)
        assert (created["aliases"], created["timeout"], created["deployments"]) == (["apg"], "45s", [])

        sdk = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=gw.api_key(), max_retries=0, timeout=10)
        completion = await sdk.chat.completions.create(
            model="apg", messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].message.content == "Hello from the mock."
        assert mock.requests[-1].header("authorization") == "Bearer sk-provider-key-0042"
        assert mock.requests[-1].json()["model"] == "api-gpt"

        stored = await row(gw, t.models, created["id"])
        sealed = stored["api_key_encrypted"]
        assert sealed
        assert "sk-provider-key-0042" not in sealed
        assert (
            gw.state.services.keyring.decrypt_secret(sealed, aad=aad_for("model", created["id"]))
            == "sk-provider-key-0042"
        )

        for response in (
            await gw.client.get(f"/api/v1/models/{created['id']}", headers=admin(gw)),
            await gw.client.get("/api/v1/models", headers=admin(gw)),
        ):
            assert response.status_code == 200
            assert "sk-provider-key" not in response.text
        listed = (await gw.client.get("/api/v1/models", headers=admin(gw))).json()
        assert [m["name"] for m in listed["data"]] == ["api-gpt"]
        assert listed["has_more"] is False


async def test_updates_deactivation_and_deletion_take_effect_on_the_next_request(sqlite_dsn: str) -> None:
    async with (
        open_mock_upstream() as first,
        open_mock_upstream() as second,
        run_gateway(make_config(sqlite_dsn)) as gw,
    ):
        model = await create_model(gw, name="m", base_url=first.base_url)
        path = f"/api/v1/models/{model['id']}"
        assert (await chat(gw, "m")).status_code == 200
        assert len(first.requests) == 1

        moved = await gw.client.patch(path, headers=admin(gw), json={"base_url": second.base_url})
        assert moved.status_code == 200
        assert moved.json()["base_url"] == second.base_url
        assert (await chat(gw, "m")).status_code == 200
        assert (len(first.requests), len(second.requests)) == (1, 1)

        off = await gw.client.patch(f"{path}/deactivate", headers=admin(gw))
        assert off.status_code == 200
        assert off.json()["is_active"] is False
        gone = await chat(gw, "m")
        assert gone.status_code == 404
        assert error(gone)["code"] == "model_not_found"
        assert (await gw.client.patch(f"{path}/activate", headers=admin(gw))).json()["is_active"] is True
        assert (await chat(gw, "m")).status_code == 200

        assert (await gw.client.delete(path, headers=admin(gw))).status_code == 204
        assert (await chat(gw, "m")).status_code == 404
        assert (await gw.client.get(path, headers=admin(gw))).status_code == 404
        again = await create_model(gw, name="m", base_url=first.base_url)  # the name is free again
        assert again["id"] != model["id"]
        assert (await chat(gw, "m")).status_code == 200
        assert (await row(gw, t.models, model["id"]))["name"] == f"m:deleted:{model['id']}"


async def test_deployments_route_at_once_and_keep_their_keys_sealed(sqlite_dsn: str) -> None:
    async with (
        open_mock_upstream() as a,
        open_mock_upstream() as b,
        run_gateway(make_config(sqlite_dsn)) as gw,
    ):
        model = await create_model(gw, name="pool", base_url=DEAD_URL, strategy="priority")
        deployments = f"/api/v1/models/{model['id']}/deployments"
        created = await gw.client.post(
            deployments,
            headers=admin(gw),
            json={
                "name": "d0",
                "provider": "openai",
                "base_url": a.base_url,
                "api_key": "sk-deploy-0007",
                "priority": 0,
            },
        )
        assert created.status_code == 201
        assert "sk-deploy-0007" not in created.text
        dep = created.json()
        assert (dep["has_api_key"], dep["weight"], dep["model_id"]) == (True, 1, model["id"])
        assert (await chat(gw, "pool")).status_code == 200
        assert a.requests[-1].header("authorization") == "Bearer sk-deploy-0007"
        sealed = (await row(gw, t.model_deployments, dep["id"]))["api_key_encrypted"]
        keyring = gw.state.services.keyring
        assert keyring.decrypt_secret(sealed, aad=aad_for("deployment", dep["id"])) == "sk-deploy-0007"

        duplicate = await gw.client.post(
            deployments, headers=admin(gw), json={"name": "d0", "provider": "openai", "base_url": b.base_url}
        )
        assert duplicate.status_code == 409
        patched = await gw.client.patch(
            f"{deployments}/{dep['id']}", headers=admin(gw), json={"base_url": b.base_url, "api_key": ""}
        )
        assert patched.status_code == 200
        assert patched.json()["has_api_key"] is False
        assert (await chat(gw, "pool")).status_code == 200
        assert b.requests[-1].header("authorization") is None
        assert len(a.requests) == 1
        listed = (await gw.client.get(deployments, headers=admin(gw))).json()
        assert [d["name"] for d in listed["data"]] == ["d0"]
        assert [
            d["name"]
            for d in (await gw.client.get(f"/api/v1/models/{model['id']}", headers=admin(gw))).json()[
                "deployments"
            ]
        ] == ["d0"]

        assert (await gw.client.delete(f"{deployments}/{dep['id']}", headers=admin(gw))).status_code == 204
        assert (await chat(gw, "pool")).status_code == 502  # back to the model's own (dead) base_url
        assert (await gw.client.get(f"{deployments}/{dep['id']}", headers=admin(gw))).status_code == 404


async def test_config_models_are_listed_with_ids_and_refused_for_writes(sqlite_dsn: str) -> None:
    yaml = "models:" + model_yaml("from-yaml", DEAD_URL) + model_yaml("also-yaml", DEAD_URL)
    async with run_gateway(make_config(sqlite_dsn, yaml)) as gw:
        listed = (await gw.client.get("/api/v1/models", headers=admin(gw))).json()["data"]
        assert sorted((m["name"], m["source"], m["has_api_key"]) for m in listed) == [
            ("also-yaml", "yaml", True),
            ("from-yaml", "yaml", True),
        ]
        model_id = next(m["id"] for m in listed if m["name"] == "from-yaml")
        sealed = (await row(gw, t.models, model_id))["api_key_encrypted"]
        assert (
            gw.state.services.keyring.decrypt_secret(sealed, aad=aad_for("model", model_id))
            == "sk-upstream-secret"
        )
        path = f"/api/v1/models/{model_id}"
        for response in (
            await gw.client.patch(path, headers=admin(gw), json={"base_url": "http://x.test/v1"}),
            await gw.client.delete(path, headers=admin(gw)),
            await gw.client.patch(f"{path}/deactivate", headers=admin(gw)),
            await gw.client.post(
                f"{path}/deployments",
                headers=admin(gw),
                json={"name": "d", "provider": "openai", "base_url": "http://x.test/v1"},
            ),
        ):
            assert response.status_code == 409
            assert error(response)["code"] == "model_managed_by_config"
            assert "config file" in error(response)["message"]
        clash = await gw.client.post(
            "/api/v1/models",
            headers=admin(gw),
            json={"name": "from-yaml", "provider": "openai", "base_url": DEAD_URL},
        )
        assert clash.status_code == 409
    # the second start no longer lists also-yaml: its row is tombstoned, and from-yaml keeps id and ciphertext
    async with run_gateway(make_config(sqlite_dsn, "models:" + model_yaml("from-yaml", DEAD_URL))) as gw:
        rows = await gw.state.store.run(
            lambda conn: {r.name: r for r in conn.execute(sa.select(t.models)).all()}
        )
        assert rows["from-yaml"].id == model_id
        assert rows["from-yaml"].api_key_encrypted == sealed
        (retired,) = [r for name, r in rows.items() if name.startswith("also-yaml:deleted:")]
        assert retired.deleted_at is not None


async def test_validation_errors(admin_world_each_dialect: AdminWorld) -> None:
    world, services = admin_world_each_dialect, admin_world_each_dialect.services

    async def make(**body: Any) -> models.ModelOut:
        req = models.ModelCreate(**{"provider": "openai", "base_url": DEAD_URL, **body})
        return await models.create(services, world.system, req)

    a = await make(name="a", aliases=["alpha"])
    b = await make(name="b", fallback_model_name="alpha")
    assert b.fallback_model_name == "a"

    for body, error_type, code in (
        ({"name": "a"}, ConflictError, "conflict"),
        ({"name": "alpha"}, ConflictError, "conflict"),
        ({"name": "c", "aliases": ["alpha"]}, ConflictError, "conflict"),
        ({"name": "c", "aliases": ["c"]}, BadRequestError, "bad_request"),
        ({"name": "c", "strategy": "fastest"}, BadRequestError, "invalid_strategy"),
        ({"name": "c", "fallback_model_name": "nope"}, BadRequestError, "bad_request"),
        ({"name": "x:deleted:y"}, BadRequestError, "bad_request"),
        ({"name": "c", "base_url": "ftp://host/v1"}, BadRequestError, "bad_request"),
        ({"name": "c", "provider": "azure"}, BadRequestError, "bad_request"),
        ({"name": "c", "timeout": "30"}, BadRequestError, "bad_request"),
        ({"name": ""}, BadRequestError, "bad_request"),
    ):
        with pytest.raises(error_type) as refused:
            await make(**body)
        assert refused.value.code == code, body

    with pytest.raises(BadRequestError, match="itself"):
        await models.update(services, world.system, a.id, models.ModelUpdate(fallback_model_name="a"))
    with pytest.raises(BadRequestError, match="cycle"):
        await models.update(services, world.system, a.id, models.ModelUpdate(fallback_model_name="b"))

    # deleting a fallback target unsets the fallback of the models pointing at it
    await models.delete(services, world.system, a.id)
    assert (await models.get(services, world.system, b.id)).fallback_model_name == ""
    with pytest.raises(NotFoundError):
        await models.get(services, world.system, "nope")


async def test_the_codec_refuses_an_unknown_provider_and_a_missing_name(sqlite_dsn: str) -> None:
    """The HTTP slice of model validation: the codec's 400 ``validation_error`` in the error envelope (the
    use case's own refusals are tested directly above)."""
    async with run_gateway(make_config(sqlite_dsn)) as gw:
        for body in ({"name": "c", "provider": "acme"}, {}):
            response = await gw.client.post(
                "/api/v1/models", headers=admin(gw), json={"provider": "openai", "base_url": DEAD_URL, **body}
            )
            assert (response.status_code, error(response)["code"]) == (400, "validation_error"), response.text
        conflict = await gw.client.post(
            "/api/v1/models",
            headers=admin(gw),
            json={"name": "c", "provider": "openai", "base_url": DEAD_URL, "aliases": ["c"]},
        )
        assert (conflict.status_code, error(conflict)["code"]) == (400, "bad_request")


async def test_fallback_to_an_api_model_and_renames_follow_allowlists(db_target: tuple[str, str]) -> None:
    driver, dsn = db_target
    async with open_mock_upstream(Behaviour(status=500)) as broken, open_mock_upstream() as ok:
        async with run_gateway(make_config(dsn, driver=driver)) as gw:
            await create_model(gw, name="backup", base_url=ok.base_url)
            primary = await create_model(
                gw, name="primary", base_url=broken.base_url, fallback_model_name="backup"
            )
            assert (await chat(gw, "primary")).status_code == 200
            assert (len(broken.requests), ok.requests[-1].json()["model"]) == (1, "backup")

            org_id = gw.state.keys.authenticate(f"Bearer {gw.api_key()}").org_id
            access = f"/api/v1/orgs/{org_id}/model-access"
            put = await gw.client.put(access, headers=admin(gw), json={"models": ["primary", "backup"]})
            assert put.status_code == 200
            renamed = await gw.client.patch(
                f"/api/v1/models/{primary['id']}", headers=admin(gw), json={"name": "main"}
            )
            assert renamed.status_code == 200
            assert (await gw.client.get(access, headers=admin(gw))).json() == {"models": ["backup", "main"]}
            assert (await chat(gw, "main")).status_code == 200
            assert (await chat(gw, "primary")).status_code == 404


async def test_only_system_admins_manage_models_and_members_see_health(sqlite_dsn: str) -> None:
    async with run_gateway(make_config(sqlite_dsn, "models:" + model_yaml("y", DEAD_URL))) as gw:
        org_admin, _ = await make_key(gw, org_role="org_admin")
        member, _ = await make_key(gw)
        for key in (org_admin, member):
            headers = {"Authorization": f"Bearer {key}"}
            denied = await gw.client.post(
                "/api/v1/models",
                headers=headers,
                json={"name": "z", "provider": "openai", "base_url": DEAD_URL},
            )
            assert denied.status_code == 403
            assert error(denied)["code"] == "forbidden"
            assert (await gw.client.get("/api/v1/models", headers=headers)).status_code == 403
        health = await gw.client.get("/api/v1/models/health", headers={"Authorization": f"Bearer {member}"})
        assert health.status_code == 200
        assert health.json() == {
            "models": [
                {
                    "name": "y",
                    "status": "unknown",
                    "last_check": None,
                    "last_error": None,
                    "latency_ms": None,
                    "health_ok": None,
                    "models_ok": None,
                    "functional_ok": None,
                }
            ]
        }
        assert (await gw.client.get("/api/v1/models/health")).status_code == 401


async def test_test_connection_reports_without_echoing_the_key(sqlite_dsn: str) -> None:
    async with open_mock_upstream() as mock, run_gateway(make_config(sqlite_dsn)) as gw:
        url = "/api/v1/models/test-connection"
        ok = await gw.client.post(
            url,
            headers=admin(gw),
            json={"provider": "openai", "base_url": mock.base_url + "/", "api_key": "sk-probe-0099"},
        )
        assert ok.status_code == 200
        assert ok.json() == {
            "success": True,
            "message": "connection successful: 1 models available",
        }
        sent = mock.requests[-1]
        assert (sent.method, sent.path, sent.header("authorization")) == (
            "GET",
            "/v1/models",
            "Bearer sk-probe-0099",
        )

        await gw.client.post(
            url,
            headers=admin(gw),
            json={"provider": "anthropic", "base_url": mock.base_url, "api_key": "sk-ant-probe"},
        )
        sent = mock.requests[-1]
        assert (sent.header("x-api-key"), sent.header("anthropic-version"), sent.header("authorization")) == (
            "sk-ant-probe",
            "2023-06-01",
            None,
        )

        mock.behaviour.status = 401
        refused = await gw.client.post(
            url,
            headers=admin(gw),
            json={"provider": "openai", "base_url": mock.base_url, "api_key": "sk-probe-0099"},
        )
        assert refused.json() == {"success": False, "message": "upstream answered HTTP 401"}
        dead = await gw.client.post(
            url,
            headers=admin(gw),
            json={"provider": "openai", "base_url": DEAD_URL, "api_key": "sk-probe-0099"},
        )
        assert dead.json() == {"success": False, "message": "connection failed: connection refused"}
        assert "sk-probe" not in dead.text + refused.text
        bad = await gw.client.post(
            url, headers=admin(gw), json={"provider": "nope", "base_url": mock.base_url}
        )
        assert bad.status_code == 400
