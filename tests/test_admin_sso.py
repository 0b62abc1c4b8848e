"""Issue 21 point 1: the single sign-on settings API (each organisation's provider, the global one's view, the
connection test), strict and with a write-only secret; the connection test against a real provider. An
organisation's issuer on a private address is refused unless ``settings.sso.allow_private_issuers`` (the
provider of these tests listens on loopback, so the tests of organisations' providers turn it on); the global
provider may be there without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.admin_tenancy import API, add_user, admin, bearer, create_org, error_of, open_gateway, user_key
from tests.gateway import make_config, run_gateway
from tests.oidc_op import open_oidc_provider
from voidllm.store import tables as t
from voidllm.store.store import open_store

SECRET = "client-secret-9c1e77"
ALLOW_PRIVATE = "sso:\n  allow_private_issuers: true"
PRIVATE_HINT = "(allowed with settings.sso.allow_private_issuers: true)"
BODY = {"issuer": "https://login.acme.test", "client_id": "voidllm", "client_secret": SECRET}


def sso_path(org_id: str) -> str:
    return f"{API}/orgs/{org_id}/sso"


async def test_put_get_delete_and_the_secret_is_write_only(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = (await create_org(gw, "acme"))["id"]
        error_of(await gw.client.get(sso_path(org), headers=admin(gw)), 404)
        first = await gw.client.put(
            sso_path(org), headers=admin(gw), json={**BODY, "allowed_domains": ["acme.test"]}
        )
        assert first.status_code == 200, first.text
        view = first.json()
        assert view == {
            "org_id": org,
            "enabled": True,
            "issuer": "https://login.acme.test",
            "client_id": "voidllm",
            "client_secret_set": True,
            "redirect_url": None,
            "scopes": ["openid", "email", "profile"],
            "allowed_domains": ["acme.test"],
            "auto_provision": True,
            "default_role": "member",
            "group_sync": "additive",
            "group_claim": "groups",
            "local_login": True,
            "created_at": view["created_at"],
            "updated_at": view["updated_at"],
        }
        got = await gw.client.get(sso_path(org), headers=admin(gw))
        assert got.json() == view
        assert SECRET not in got.text
        # a PUT without client_secret keeps the stored one and replaces the rest
        changed = {
            "issuer": BODY["issuer"],
            "client_id": "other",
            "group_sync": "exact",
            "local_login": False,
        }
        again = await gw.client.put(sso_path(org), headers=admin(gw), json=changed)
        assert again.status_code == 200, again.text
        assert (again.json()["client_secret_set"], again.json()["client_id"]) == (True, "other")
        assert (again.json()["allowed_domains"], again.json()["group_sync"]) == ([], "exact")
        row = await gw.state.services.store.run(
            lambda conn: conn.execute(sa.select(t.org_sso_config)).mappings().one()
        )
        assert SECRET not in str(dict(row))
        keyring = gw.state.services.keyring
        assert keyring.decrypt_secret(row["client_secret_enc"], aad=f"org_sso:{org}") == SECRET
        public = await gw.client.put(sso_path(org), headers=admin(gw), json={**changed, "client_secret": ""})
        assert public.json()["client_secret_set"] is False
        assert (await gw.client.delete(sso_path(org), headers=admin(gw))).status_code == 204
        assert error_of(await gw.client.get(sso_path(org), headers=admin(gw)), 404)["code"] == "not_found"
        error_of(await gw.client.delete(sso_path(org), headers=admin(gw)), 404)
    async with open_store("sqlite", sqlite_dsn) as store:
        rows = await store.run(
            lambda conn: [dict(r) for r in conn.execute(sa.select(t.audit_logs)).mappings()]
        )
    sso_rows = [row for row in rows if row["resource_type"] == "sso_config"]
    assert [row["action"] for row in sso_rows] == ["update", "update", "update", "delete"]
    assert all(SECRET not in str(row) for row in rows)
    assert orjson.loads(sso_rows[0]["description"])["client_secret"] == "[REDACTED]"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"issuer": "http://login.acme.test"}, "issuer"),
        ({"issuer": "not a url"}, "issuer"),
        ({"issuer": 5}, "issuer"),
        ({"client_id": ""}, "client_id"),
        ({"redirect_url": "ftp://x"}, "redirect_url"),
        ({"scopes": ["email"]}, "scopes"),
        ({"scopes": "openid"}, "scopes"),
        ({"allowed_domains": ["Acme.test"]}, "allowed_domains"),
        ({"default_role": "org_admin"}, "default_role"),
        ({"group_sync": "full"}, "group_sync"),
        ({"group_claim": ""}, "group_claim"),
        ({"local_login": "no"}, "local_login"),
        ({"enabled": None}, "enabled"),
    ],
)
async def test_put_is_strict_and_names_the_field(sqlite_dsn: str, change: dict[str, Any], field: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org = (await create_org(gw, "acme"))["id"]
        error = error_of(await gw.client.put(sso_path(org), headers=admin(gw), json={**BODY, **change}), 400)
        assert error.get("field", "").split("[")[0].split(".")[0] == field, error
        assert SECRET not in str(error)
        error_of(await gw.client.get(sso_path(org), headers=admin(gw)), 404)  # nothing was stored


async def test_first_put_needs_a_secret_and_org_admins_see_only_their_own(sqlite_dsn: str) -> None:
    async with open_gateway(sqlite_dsn) as gw:
        org, other = (await create_org(gw, "acme"))["id"], (await create_org(gw, "beta"))["id"]
        without = {key: value for key, value in BODY.items() if key != "client_secret"}
        error = error_of(await gw.client.put(sso_path(org), headers=admin(gw), json=without), 400)
        assert error["field"] == "client_secret"
        boss = await add_user(gw, org, "boss@acme.test", role="org_admin")
        key = await user_key(gw, org, boss)
        assert (await gw.client.put(sso_path(org), headers=bearer(key), json=BODY)).status_code == 200
        error_of(await gw.client.put(sso_path(other), headers=bearer(key), json=BODY), 403)
        error_of(await gw.client.get(sso_path(other), headers=bearer(key)), 403)
        member = await user_key(gw, org, await add_user(gw, org, "m@acme.test"))
        error_of(await gw.client.get(sso_path(org), headers=bearer(member)), 403)
        error_of(await gw.client.get(f"{API}/settings/sso", headers=bearer(key)), 403)


async def test_connection_test_against_a_real_provider_and_failures(sqlite_dsn: str) -> None:
    async with open_oidc_provider() as op, open_gateway(sqlite_dsn, settings=ALLOW_PRIVATE) as gw:
        org = (await create_org(gw, "acme"))["id"]
        test = f"{sso_path(org)}/test"
        error_of(await gw.client.post(test, headers=admin(gw)), 404)  # nothing stored, nothing sent
        ok = await gw.client.post(test, headers=admin(gw), json={"issuer": op.issuer})
        assert ok.json() == {
            "ok": True,
            "issuer": op.issuer,
            "authorization_endpoint": f"{op.issuer}/auth",
            "jwks_keys": 1,
            "error": None,
        }
        stored = {**BODY, "issuer": op.issuer}
        assert (await gw.client.put(sso_path(org), headers=admin(gw), json=stored)).status_code == 200
        assert (await gw.client.post(test, headers=admin(gw))).json()["ok"] is True  # the stored one
        missing = await gw.client.post(test, headers=admin(gw), json={"issuer": op.issuer + "/nowhere"})
        assert missing.json() == {
            "ok": False,
            "issuer": op.issuer + "/nowhere",
            "authorization_endpoint": None,
            "jwks_keys": 0,
            "error": "the discovery document answered HTTP 404",
        }
        down = await gw.client.post(test, headers=admin(gw), json={"issuer": "http://127.0.0.1:9"})
        assert down.json()["ok"] is False
        assert down.json()["error"].startswith("the discovery document is unreachable (")
        error_of(
            await gw.client.post(test, headers=admin(gw), json={"issuer": "https://x.test", "x": 1}), 400
        )


async def test_an_org_issuer_on_a_private_address_is_refused_unless_allowed(sqlite_dsn: str) -> None:
    """SSRF: an org admin's issuer never aims the gateway at this machine or its network. PUT and the test of
    an unsaved form answer 400 naming issuer and the setting; a stored issuer the setting no longer allows
    fails the test; with the setting the same provider is saved and tested."""
    private = [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "https://169.254.169.254",
        "https://10.1.2.3/realms/acme",
        "https://[::1]:8443",
        "https://127.1",
    ]
    async with open_oidc_provider() as op:
        async with open_gateway(sqlite_dsn) as gw:
            org = (await create_org(gw, "acme"))["id"]
            owner = await add_user(gw, org, "owner@acme.test", role="org_admin")
            headers = bearer(await user_key(gw, org, owner))
            test = f"{sso_path(org)}/test"
            for issuer in [*private, op.issuer]:
                put = await gw.client.put(sso_path(org), headers=headers, json={**BODY, "issuer": issuer})
                tested = await gw.client.post(test, headers=headers, json={"issuer": issuer})
                for response in (put, tested):
                    error = error_of(response, 400)
                    assert (error["code"], error.get("field")) == ("private_url_not_allowed", "issuer"), error
                    assert error["message"] == (
                        "issuer points at a private, loopback, link-local or reserved address " + PRIVATE_HINT
                    )
            error_of(await gw.client.get(sso_path(org), headers=admin(gw)), 404)  # nothing was stored
            assert (await gw.client.put(sso_path(org), headers=headers, json=BODY)).status_code == 200
        # the same database (the org admin's key still signs in), restarted with the setting
        async with open_gateway(sqlite_dsn, settings=ALLOW_PRIVATE) as gw:
            stored = {**BODY, "issuer": op.issuer}
            assert (await gw.client.put(sso_path(org), headers=headers, json=stored)).status_code == 200
            tested = await gw.client.post(test, headers=headers)
            assert (tested.json()["ok"], tested.json()["jwks_keys"]) == (True, 1)
        async with open_gateway(sqlite_dsn) as gw:  # the setting was turned off again
            stale = await gw.client.post(test, headers=headers)
            assert stale.json() == {
                "ok": False,
                "issuer": op.issuer,
                "authorization_endpoint": None,
                "jwks_keys": 0,
                "error": "the discovery document URL points at a private, loopback, link-local or reserved "
                "address " + PRIVATE_HINT,
            }


async def test_global_provider_view_and_test(sqlite_dsn: str, tmp_path: Path) -> None:
    async with open_oidc_provider() as op:
        sso = (
            f"sso:\n  enabled: true\n  issuer: {op.issuer}\n  client_id: {op.client_id}\n"
            f"  client_secret: {SECRET}\n  default_org_slug: default\n  allowed_domains: [acme.test]"
        )
        async with run_gateway(make_config(sqlite_dsn, settings=sso)) as gw:
            view = await gw.client.get(f"{API}/settings/sso", headers=admin(gw))
            assert view.status_code == 200, view.text
            assert SECRET not in view.text
            assert view.json() == {
                "configured": True,
                "enabled": True,
                "issuer": op.issuer,
                "client_id": op.client_id,
                "client_secret_set": True,
                "redirect_url": None,
                "scopes": ["openid", "email", "profile"],
                "allowed_domains": ["acme.test"],
                "auto_provision": True,
                "default_role": "member",
                "default_org_slug": "default",
                "group_sync": "additive",
                "group_claim": "groups",
                "id_token_algorithms": ["RS256", "ES256", "PS256", "EdDSA"],
            }
            assert gw.state.services.config.settings.sso.allow_private_issuers is False
            tested = await gw.client.post(f"{API}/settings/sso/test", headers=admin(gw))
            # the operator's provider may be on loopback without allow_private_issuers
            assert (tested.json()["ok"], tested.json()["jwks_keys"]) == (True, 1)
    async with open_gateway(str(tmp_path / "plain.db")) as gw:
        assert (await gw.client.get(f"{API}/settings/sso", headers=admin(gw))).json()["configured"] is False
        none = await gw.client.post(f"{API}/settings/sso/test", headers=admin(gw))
        assert none.json() == {
            "ok": False,
            "issuer": "",
            "authorization_endpoint": None,
            "jwks_keys": 0,
            "error": "settings.sso has no issuer",
        }
