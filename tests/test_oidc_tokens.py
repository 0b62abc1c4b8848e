"""Issue 21 point 3, the protocol's checks without a network: ID tokens made with joserfc and a fixed clock
(signature, algorithm, issuer, audience, times, nonce), the sealed sign-in state, and the key set's cache with
its rate-limited refetch for unknown key ids (the provider an ``httpx.MockTransport``)."""

from __future__ import annotations

import base64
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from voidllm.auth.oidc import (
    FLOW_TTL,
    Discovery,
    FlowState,
    OidcClient,
    OidcError,
    Provider,
    UnknownKeyError,
    authorization_url,
    check_id_token,
    new_flow,
)
from voidllm.crypto import Keyring

ISSUER = "https://op.test"
NOW = 1_800_000_000
NONCE = "nonce-123"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
PROVIDER = Provider(
    id="global",
    org_id=None,
    issuer=ISSUER,
    client_id="voidllm",
    client_secret="s",
    redirect_url=None,
    scopes=("openid", "email"),
    allowed_domains=(),
    auto_provision=True,
    default_role="member",
    group_sync="off",
    group_claim="groups",
    algorithms=("RS256", "ES256"),
)


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "aud": "voidllm", "sub": "u1", "iat": NOW - 5, "exp": NOW + 300, "nonce": NONCE}
    return {key: value for key, value in {**base, **changes}.items() if value is not None}


def token(key: Any = KEY, alg: str = "RS256", kid: str | None = "k1", **changes: Any) -> str:
    header = {"alg": alg, **({"kid": kid} if kid else {})}
    return jwt.encode(header, claims(**changes), key, algorithms=[alg])


def check(id_token: str, keys: KeySet | None = None, now: float = NOW) -> dict[str, Any]:
    keys = keys or KeySet([KEY])
    return check_id_token(id_token, keys, provider=PROVIDER, issuer=ISSUER, nonce=NONCE, now=now)


def test_a_valid_token_gives_its_claims() -> None:
    assert check(token())["sub"] == "u1"
    assert check(token(aud=["voidllm", "other"], azp="voidllm"))["sub"] == "u1"
    ec = ECKey.generate_key("P-256", parameters={"kid": "e1"})
    assert check(token(ec, "ES256", "e1"), KeySet([KEY, ec]))["sub"] == "u1"


@pytest.mark.parametrize(
    ("made", "message"),
    [
        (lambda: token(exp=NOW - 61), "has expired"),
        (lambda: token(iat=NOW + 120), "has a wrong iat"),
        (lambda: token(nbf=NOW + 120), "has a wrong nbf"),
        (lambda: token(iss="https://evil.test"), "has a wrong iss"),
        (lambda: token(aud="someone-else"), "has a wrong aud"),
        (lambda: token(aud=["voidllm", "other"]), "has several audiences and another authorized party"),
        (lambda: token(aud=["voidllm", "other"], azp="other"), "has several audiences"),
        (lambda: token(nonce="replayed"), "has a wrong nonce"),
        (lambda: token(nonce=None), "lacks the claim nonce"),
        (lambda: token(exp=None), "lacks the claim exp"),
        (lambda: token(RSAKey.generate_key(2048, parameters={"kid": "k1"})), "has a bad signature"),
        (lambda: token(OctKey.generate_key(256), "HS256"), "cannot be read (UnsupportedAlgorithmError)"),
        (lambda: token(KEY, "RS512"), "cannot be read (UnsupportedAlgorithmError)"),
        (lambda: "a.b", "cannot be read"),
    ],
)
def test_a_token_failing_a_check_is_refused_naming_it(made: Any, message: str) -> None:
    with pytest.raises(OidcError) as info:
        check(made())
    assert info.value.reason == "token_invalid"
    assert str(info.value).startswith(f"the ID token {message}"), str(info.value)
    assert "u1" not in str(info.value)


def test_alg_none_is_refused() -> None:
    unsigned = ".".join(
        jwt_part
        for jwt_part in (
            _b64({"alg": "none", "kid": "k1"}),
            _b64(claims()),
            "",
        )
    )
    with pytest.raises(OidcError, match="cannot be read"):
        check(unsigned)


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


def test_leeway_and_unknown_key_id() -> None:
    assert check(token(exp=NOW - 30))["sub"] == "u1"  # within the 60 s leeway
    with pytest.raises(UnknownKeyError):
        check(token(kid="rotated"))


def test_the_sealed_state_cannot_be_read_forged_or_kept_too_long() -> None:
    keyring = Keyring.from_setting("a passphrase of some length")
    flow = new_flow("global", "http://gw.test/cb", now=float(NOW))
    sealed = flow.seal(keyring)
    assert flow.nonce not in sealed
    assert flow.verifier not in sealed
    assert FlowState.open(keyring, sealed, now=NOW + 10) == flow
    assert FlowState.open(keyring, sealed, now=NOW + FLOW_TTL + 1) is None
    assert (
        FlowState.open(keyring, sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1], now=NOW)
        is None
    )
    other = Keyring.from_setting("another passphrase, longer")
    assert FlowState.open(other, sealed, now=NOW) is None
    forged = attrs.evolve(flow, nonce="mine")
    assert FlowState.open(keyring, forged.seal(keyring), now=NOW) == forged  # only the key holder can
    discovery = Discovery(ISSUER, f"{ISSUER}/auth?x=1", f"{ISSUER}/token", f"{ISSUER}/jwks")
    url = httpx.URL(authorization_url(discovery, PROVIDER, flow, login_hint="a@b.test"))
    params = dict(url.params)
    assert (params["code_challenge_method"], params["x"], params["login_hint"]) == ("S256", "1", "a@b.test")
    assert (params["state"], params["nonce"], params["redirect_uri"]) == (
        flow.state,
        flow.nonce,
        "http://gw.test/cb",
    )
    assert params["code_challenge"] != flow.verifier


@attrs.define
class FakeOp:
    keys: list[Any]
    jwks_fetches: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/auth",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                },
            )
        self.jwks_fetches += 1
        return httpx.Response(200, json=KeySet(list(self.keys)).as_dict(private=False))


async def test_unknown_key_ids_refetch_the_key_set_at_most_every_30_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    op = FakeOp([KEY])
    async with httpx.AsyncClient(transport=httpx.MockTransport(op.handle)) as http:
        client = OidcClient(http, http, wall=lambda: float(NOW))
        discovery = await client.discover(ISSUER, org=False)
        assert (await client.verify(PROVIDER, discovery, token(), nonce=NONCE))["sub"] == "u1"
        rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"})
        op.keys = [rotated]
        assert (await client.verify(PROVIDER, discovery, token(rotated, kid="k2"), nonce=NONCE))[
            "sub"
        ] == "u1"
        assert op.jwks_fetches == 2  # the rotation was picked up by one refetch
        for _ in range(3):
            with pytest.raises(UnknownKeyError):
                await client.verify(PROVIDER, discovery, token(kid="made-up"), nonce=NONCE)
        assert op.jwks_fetches == 2  # within 30 s of the last refetch: none
        await trio.sleep(30)
        with pytest.raises(UnknownKeyError):
            await client.verify(PROVIDER, discovery, token(kid="made-up"), nonce=NONCE)
        assert op.jwks_fetches == 3
        await trio.sleep(600)  # the cache expired: the next sign-in fetches the set again
        await client.verify(PROVIDER, discovery, token(rotated, kid="k2"), nonce=NONCE)
        assert op.jwks_fetches == 4


async def test_discovery_for_another_issuer_is_refused() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"issuer": "https://evil.test", "authorization_endpoint": "x"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        with pytest.raises(OidcError, match="no usable authorization_endpoint"):
            await OidcClient(http, http).discover(ISSUER, org=False)
