"""Request policies: which body parameters a request may carry and within which bounds, which headers it must
send, and which browser origins may use a key. Pure values, parsed strictly, merged most restrictive first.

A policy is stored per organisation, team, key and model (:mod:`voidllm.admin.policies`); the key cache
merges a key's organisation, team and key policies into its :class:`~voidllm.identity.KeyIdentity`, the
catalog holds each model's (params only: headers and origins belong to keys). The JSON form::

    {"params": {"allow": ["messages", "max_tokens"] | null, "deny": ["logprobs"],
                "bounds": {"max_tokens": {"max": 1000}, "n": {"min": 1, "max": 1}}},
     "required_headers": [{"name": "x-app", "value": "checkout"}],
     "allowed_origins": ["https://app.example"]}

Every key is optional. Parameter names are the request body's top-level field names as the client sends them
(``tools``, ``logprobs``, ``stream``; on ``/v1/messages`` Anthropic's names). ``model`` is always allowed
(every request names one) and can be neither denied nor bounded. ``allow`` (when set) lists every other field
a request may carry.

**Merge** (:func:`merge`), most restrictive wins: ``deny`` is the union; ``allow`` the intersection of the
lists that are set; ``bounds`` per parameter the intersection of the ranges (the largest minimum, the
smallest maximum), and when the ranges do not meet no value is acceptable, so the parameter is refused
altogether; ``required_headers`` the union (two policies requiring different values of one header can't both
be met: every request is refused); ``allowed_origins`` the intersection of the lists that are set.

**Checks** (hot path, no allocation when nothing is refused): :meth:`RequestPolicy.check_params` over the
parsed body, :meth:`RequestPolicy.check_form` over a multipart form's fields (audio and image uploads),
:meth:`RequestPolicy.check_headers` over the ASGI headers, :meth:`RequestPolicy.allows_origin`.
Checking a body against two policies one after the other refuses exactly what checking it against their
merge refuses, so the proxy checks the key's and the model's policies in turn and never merges per request.
Refusals name the parameter or header, never the value sent.

**Forms.** A multipart form's fields are parameters like a JSON body's top-level fields, file parts
included (``file``, ``image``, ``mask``): ``allow`` and ``deny`` apply to their names, a name ending in
``[]`` (how the SDKs send a list, ``timestamp_granularities[]``) counting as the name without it, and a
repeated field is checked at each occurrence. A form value is text, so a bounded field's value must read as
a number: an optional sign, digits with an optional decimal point and exponent (``0.5``, ``1e2``), at most
64 characters, surrounding whitespace ignored; anything else (an empty value, ``true``, ``nan``, ``inf``, a
number too large to be finite, or a file part under a bounded name) is refused as not a number, as a JSON
string or boolean is.

:func:`parse_policy` raises :class:`RequestPolicyError` naming the path of the first invalid part
(``request.params.bounds.max_tokens.max``); it is used by the admin API (a 400) and by the key cache when it
reads stored documents.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs
import orjson

from voidllm.errors import BadRequestError, PermissionDeniedError
from voidllm.guard import GuardPolicy
from voidllm.guard import parse_policy as parse_guard

__all__ = [
    "ORIGIN_VERDICT",
    "REFUSAL_CODES",
    "Bound",
    "RequestPolicy",
    "RequestPolicyError",
    "RequiredHeader",
    "ScopePolicy",
    "dump_policy",
    "merge",
    "parse_policy",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_HEADER = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]{1,64}")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,256}")
_ORIGIN = re.compile(r"https?://[a-z0-9.-]{1,253}(:[0-9]{1,5})?|https?://\[[0-9a-f:.]{2,45}\](:[0-9]{1,5})?")
_FORM_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FORBIDDEN_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "host", "content-length", "origin"})
ORIGIN_VERDICT = "voidllm.origin_allowed"
"""ASGI scope key: ``True``/``False`` once the proxy checked the page's ``Origin`` against the key's allowed
origins (absent: the key lists none); the edge's CORS headers follow it (:mod:`voidllm.web.cors`)."""
MAX_NAMES = 256
"""At most this many names in ``allow``, ``deny`` and ``bounds`` each."""
MAX_HEADERS = 32
MAX_ORIGINS = 64
ALWAYS_ALLOWED = "model"


REFUSAL_CODES = frozenset(
    {"parameter_not_allowed", "parameter_out_of_bounds", "required_header", "origin_not_allowed"}
)
"""The error codes of a request a policy refused (``voidllm_request_policy_refusals_total{reason}``)."""


class RequestPolicyError(BadRequestError):
    """A policy document is not valid; ``param`` (and the envelope's ``field``) is the path of the offending
    part. The message names the path and what was expected, never the value given."""

    code = "invalid_request_policy"

    def __init__(self, path: str, expected: str) -> None:
        super().__init__(f"{path}: {expected}", param=path, extra={"field": path})
        self.path = path


@attrs.frozen
class Bound:
    """An inclusive range of a numeric parameter; a side that is ``None`` is open. ``min > max`` (only from a
    merge) admits no value."""

    min: float | None = None
    max: float | None = None

    @property
    def empty(self) -> bool:
        return self.min is not None and self.max is not None and self.min > self.max

    def intersect(self, other: Bound) -> Bound:
        low = [v for v in (self.min, other.min) if v is not None]
        high = [v for v in (self.max, other.max) if v is not None]
        return Bound(max(low) if low else None, min(high) if high else None)


@attrs.frozen
class RequiredHeader:
    """A header every request must carry (``name`` lowercase), with exactly ``value`` when it is set."""

    name: str
    value: str | None = None


def _frozen_bounds(value: Mapping[str, Bound]) -> Mapping[str, Bound]:
    return MappingProxyType(dict(sorted(value.items())))


@attrs.frozen
class RequestPolicy:
    """One scope's request policy, or the merge of several (see the module docstring)."""

    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    bounds: Mapping[str, Bound] = attrs.field(factory=dict, converter=_frozen_bounds, hash=False)
    required_headers: tuple[RequiredHeader, ...] = ()
    allowed_origins: frozenset[str] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # a read-only mapping does not pickle: rebuilt from a plain dict
        fields = (self.allow, self.deny, dict(self.bounds), self.required_headers, self.allowed_origins)
        return (RequestPolicy, fields)

    @property
    def checks_params(self) -> bool:
        return self.allow is not None or bool(self.deny) or bool(self.bounds)

    @property
    def empty(self) -> bool:
        """Whether it restricts nothing (the key cache then keeps ``None``: no cost per request)."""
        return not self.checks_params and not self.required_headers and self.allowed_origins is None

    def check_params(self, payload: Mapping[str, Any]) -> None:
        """Refuse a body field that is denied, not allowed, or out of its bounds.

        Raises:
            BadRequestError: ``parameter_not_allowed`` or ``parameter_out_of_bounds``, ``param`` naming it.
        """
        if self.allow is not None or self.deny:
            for name in payload:
                self._check_name(name)
        for name, bound in self.bounds.items():
            if name in payload:
                _check_bound(name, bound, payload[name])

    def check_form(self, fields: Iterable[tuple[str, str | None]]) -> None:
        """:meth:`check_params` for a multipart form: its fields as (name, text value, or ``None`` for a file
        part), in order; see "Forms" in the module docstring.

        Raises:
            BadRequestError: ``parameter_not_allowed`` or ``parameter_out_of_bounds``, ``param`` naming it.
        """
        names = self.allow is not None or bool(self.deny)
        for sent, value in fields:
            name = sent.removesuffix("[]")
            if names:
                self._check_name(name)
            bound = self.bounds.get(name)
            if bound is not None:
                _check_bound(name, bound, _form_number(name, value) if not bound.empty else None)

    def _check_name(self, name: str) -> None:
        allow = self.allow
        if name in self.deny or (allow is not None and name not in allow and name != ALWAYS_ALLOWED):
            shown = _clip(name)
            raise BadRequestError(
                f"the parameter {shown} is not allowed by the request policy",
                code="parameter_not_allowed",
                param=shown,
            )

    def check_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Refuse a request without a required header, or with another value than the one required.

        Raises:
            PermissionDeniedError: ``required_header``, naming the header, never the value sent.
        """
        if not self.required_headers:
            return
        sent: dict[str, bytes] = {}
        wanted = {required.name for required in self.required_headers}
        for name, value in headers:
            text = name.decode("latin-1").lower()
            if text in wanted:
                sent.setdefault(text, value)
        for required in self.required_headers:
            got = sent.get(required.name)
            if not got:
                raise PermissionDeniedError(
                    f"the request policy requires the header {required.name}", code="required_header"
                )
            if required.value is not None and got.decode("latin-1").strip() != required.value:
                raise PermissionDeniedError(
                    f"the header {required.name} does not have the value the request policy requires",
                    code="required_header",
                )

    def allows_origin(self, origin: str) -> bool:
        """Whether a browser page of ``origin`` (an ``Origin`` header) may use the key."""
        return self.allowed_origins is None or origin.lower().rstrip("/") in self.allowed_origins


@attrs.frozen
class ScopePolicy:
    """What one scope stores: its request policy and its prompt guard policy (both optional), parsed."""

    request: RequestPolicy | None = None
    guard: GuardPolicy | None = None

    @classmethod
    def from_documents(cls, request: str | None, guard: str | None) -> ScopePolicy:
        """The policies of a ``policies`` row (JSON text, validated when written).

        Raises:
            RequestPolicyError, GuardPolicyError: a stored document no longer parses (the caller logs it).
        """
        return cls(
            request=None if request is None else parse_policy(orjson.loads(request)),
            guard=None if guard is None else parse_guard(orjson.loads(guard)),
        )


def _clip(name: str) -> str:
    return name if len(name) <= 64 else name[:64] + "…"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _form_number(name: str, value: str | None) -> float:
    """A form field's value as the number a bound compares (see "Forms" in the module docstring)."""
    text = "" if value is None else value.strip()
    if len(text) <= 64 and _FORM_NUMBER.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    raise BadRequestError(
        f"{name} must be a number (the request policy bounds it)", code="parameter_out_of_bounds", param=name
    )


def _check_bound(name: str, bound: Bound, value: Any) -> None:
    if bound.empty:
        raise BadRequestError(
            f"the parameter {name} is not allowed: the request policies' bounds for it leave no value",
            code="parameter_not_allowed",
            param=name,
        )
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequestError(
            f"{name} must be a number (the request policy bounds it)",
            code="parameter_out_of_bounds",
            param=name,
        )
    if bound.min is not None and value < bound.min:
        raise BadRequestError(
            f"{name} must be at least {_number(bound.min)} (request policy)",
            code="parameter_out_of_bounds",
            param=name,
        )
    if bound.max is not None and value > bound.max:
        raise BadRequestError(
            f"{name} must be at most {_number(bound.max)} (request policy)",
            code="parameter_out_of_bounds",
            param=name,
        )


# -- merge ------------------------------------------------------------------------------------------------


def merge(*policies: RequestPolicy | None) -> RequestPolicy | None:
    """The most restrictive combination of the given policies (see the module docstring); ``None`` when
    none is given or the result restricts nothing."""
    present = [p for p in policies if p is not None]
    if not present:
        return None
    if len(present) == 1:
        return None if present[0].empty else present[0]
    allows = [p.allow for p in present if p.allow is not None]
    bounds: dict[str, Bound] = {}
    for policy in present:
        for name, bound in policy.bounds.items():
            bounds[name] = bounds[name].intersect(bound) if name in bounds else bound
    origins = [p.allowed_origins for p in present if p.allowed_origins is not None]
    merged = RequestPolicy(
        allow=frozenset.intersection(*allows) if allows else None,
        deny=frozenset().union(*(p.deny for p in present)),
        bounds=bounds,
        required_headers=tuple(dict.fromkeys(h for p in present for h in p.required_headers)),
        allowed_origins=frozenset.intersection(*origins) if origins else None,
    )
    return None if merged.empty else merged


# -- parse and dump -----------------------------------------------------------------------------------------


def parse_policy(value: Any, path: str = "request") -> RequestPolicy:
    """A :class:`RequestPolicy` from its JSON form, strictly.

    Raises:
        RequestPolicyError: naming the path of the first invalid key or value.
    """
    _keys(value, path, ("params", "required_headers", "allowed_origins"))
    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    bounds: dict[str, Bound] = {}
    if value.get("params") is not None:
        allow, deny, bounds = _params(value["params"], f"{path}.params")
    headers: tuple[RequiredHeader, ...] = ()
    if value.get("required_headers") is not None:
        headers = _headers(value["required_headers"], f"{path}.required_headers")
    origins = None
    if value.get("allowed_origins") is not None:
        origins = _origins(value["allowed_origins"], f"{path}.allowed_origins")
    return RequestPolicy(allow, deny, bounds, headers, origins)


def _keys(value: Any, path: str, known: tuple[str, ...]) -> None:
    if not isinstance(value, Mapping):
        raise RequestPolicyError(path, f"expected an object (keys: {', '.join(known)})")
    for key in value:
        if key not in known:
            raise RequestPolicyError(
                f"{path}.{_clip(str(key))}", f"unknown key (expected {', '.join(known)})"
            )


def _list(value: Any, path: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise RequestPolicyError(path, "expected a list")
    if len(value) > limit:
        raise RequestPolicyError(path, f"at most {limit} entries")
    return value


def _names(value: Any, path: str) -> frozenset[str]:
    names = _list(value, path, MAX_NAMES)
    for index, name in enumerate(names):
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise RequestPolicyError(f"{path}[{index}]", "expected a parameter name (letters, digits, _)")
        if name == ALWAYS_ALLOWED:
            raise RequestPolicyError(f"{path}[{index}]", "model is always allowed (every request names one)")
    return frozenset(names)


def _params(value: Any, path: str) -> tuple[frozenset[str] | None, frozenset[str], dict[str, Bound]]:
    _keys(value, path, ("allow", "deny", "bounds"))
    allow = None if value.get("allow") is None else _names(value["allow"], f"{path}.allow")
    deny = frozenset[str]() if value.get("deny") is None else _names(value["deny"], f"{path}.deny")
    bounds: dict[str, Bound] = {}
    if value.get("bounds") is not None:
        where = f"{path}.bounds"
        if not isinstance(value["bounds"], Mapping):
            raise RequestPolicyError(where, "expected an object of parameter: {min, max}")
        if len(value["bounds"]) > MAX_NAMES:
            raise RequestPolicyError(where, f"at most {MAX_NAMES} entries")
        for name, bound in value["bounds"].items():
            bounds[name] = _bound(name, bound, f"{where}.{_clip(str(name))}")
    return allow, deny, bounds


def _bound(name: Any, value: Any, path: str) -> Bound:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name == ALWAYS_ALLOWED:
        raise RequestPolicyError(path, "expected a parameter name (letters, digits, _; not model)")
    _keys(value, path, ("min", "max"))
    sides: dict[str, float | None] = {}
    for side in ("min", "max"):
        number = value.get(side)
        ok = number is None or (
            isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number)
        )
        if not ok or (number is not None and abs(number) > 1e15):
            raise RequestPolicyError(f"{path}.{side}", "expected a number (at most 10^15 in magnitude)")
        sides[side] = number
    if sides["min"] is None and sides["max"] is None:
        raise RequestPolicyError(path, "expected min, max or both")
    low, high = sides["min"], sides["max"]
    if low is not None and high is not None and low > high:
        raise RequestPolicyError(f"{path}.min", "must not be greater than max")
    return Bound(low, high)


def _headers(value: Any, path: str) -> tuple[RequiredHeader, ...]:
    found: dict[str, RequiredHeader] = {}
    for index, entry in enumerate(_list(value, path, MAX_HEADERS)):
        where = f"{path}[{index}]"
        _keys(entry, where, ("name", "value"))
        name = entry.get("name")
        if not isinstance(name, str) or not _HEADER.fullmatch(name.lower()):
            raise RequestPolicyError(f"{where}.name", "expected a header name")
        name = name.lower()
        if name in _FORBIDDEN_HEADERS:
            raise RequestPolicyError(f"{where}.name", "this header cannot be required by a policy")
        wanted = entry.get("value")
        if wanted is not None and (not isinstance(wanted, str) or not _HEADER_VALUE.fullmatch(wanted)):
            raise RequestPolicyError(f"{where}.value", "expected 1 to 256 printable ASCII characters")
        if name in found:
            raise RequestPolicyError(f"{where}.name", "listed twice")
        found[name] = RequiredHeader(name, None if wanted is None else wanted.strip())
    return tuple(found.values())


def _origins(value: Any, path: str) -> frozenset[str]:
    origins: set[str] = set()
    for index, origin in enumerate(_list(value, path, MAX_ORIGINS)):
        normal = _normal_origin(origin) if isinstance(origin, str) else ""
        if not _ORIGIN.fullmatch(normal):
            raise RequestPolicyError(
                f"{path}[{index}]", "expected an origin: http(s)://host[:port], without a path (no *)"
            )
        origins.add(normal)
    return frozenset(origins)


def _normal_origin(origin: str) -> str:
    """Lowercase, no trailing slash, no default port: how browsers send ``Origin``."""
    origin = origin.strip().lower().rstrip("/")
    for scheme, port in (("http://", ":80"), ("https://", ":443")):
        if origin.startswith(scheme) and origin.endswith(port):
            return origin.removesuffix(port)
    return origin


def dump_policy(policy: RequestPolicy) -> dict[str, Any]:
    """The JSON form of a policy, the inverse of :func:`parse_policy` (an empty merged range shows as is)."""

    def side(bound: Bound) -> dict[str, float]:
        return {k: v for k, v in (("min", bound.min), ("max", bound.max)) if v is not None}

    return {
        "params": {
            "allow": None if policy.allow is None else sorted(policy.allow),
            "deny": sorted(policy.deny),
            "bounds": {name: side(bound) for name, bound in policy.bounds.items()},
        },
        "required_headers": [
            {"name": h.name} if h.value is None else {"name": h.name, "value": h.value}
            for h in policy.required_headers
        ],
        "allowed_origins": None if policy.allowed_origins is None else sorted(policy.allowed_origins),
    }
