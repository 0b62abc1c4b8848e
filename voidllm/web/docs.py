"""API documentation (no authentication; docs/reference/behaviour.md 1.2): ``/api/docs/openapi.json`` serves
the OpenAPI document of the management API and ``/api/docs`` a readable page rendered from the same document.

The page is plain server-rendered HTML with inline CSS and no script: the gateway runs self-hosted and
often offline, so it loads nothing from a CDN. Operations are grouped by tag and show method, path, summary,
required role, parameters and the request and response schemas; schemas are listed once at the end and
linked by name.
"""

from __future__ import annotations

import functools
import html
from typing import Any

import orjson
from quart import Blueprint, Response

from voidllm import __version__
from voidllm.web.openapi import DOCUMENT_PATH, build_document

blueprint = Blueprint("docs", __name__)

_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


@functools.cache
def document() -> dict[str, Any]:
    """The management API's OpenAPI document (routes are fixed once ``voidllm.web.api`` is imported)."""
    from voidllm.web.api import api

    return build_document(api.routes, version=__version__)


@functools.cache
def _document_json() -> bytes:
    return orjson.dumps(document())


@functools.cache
def _page() -> str:
    return render_page(document())


@blueprint.get(DOCUMENT_PATH)
async def openapi_json() -> Response:
    return Response(_document_json(), content_type="application/json")


@blueprint.get("/api/docs")
async def docs_page() -> Response:
    return Response(_page(), content_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


# -- rendering -------------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem 2rem;color:#1d1d1f}
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
details{border:1px solid #ddd;border-radius:6px;margin:.4rem 0;padding:.3rem .7rem}
summary{cursor:pointer}code,pre{font:13px ui-monospace,monospace}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;border-radius:4px}
.m{display:inline-block;min-width:4.2rem;font-weight:700;font-family:ui-monospace,monospace}
.get{color:#0969da}.post{color:#1a7f37}.put,.patch{color:#9a6700}.delete{color:#cf222e}
.role{color:#666;font-size:.85em;margin-left:.5rem}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
"""


def render_page(doc: dict[str, Any]) -> str:
    """The HTML documentation page of an OpenAPI document."""
    info = doc["info"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{_e(info['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(info['title'])} <small>{_e(info['version'])}</small></h1>",
        f"<p>{_e(info.get('description', ''))}</p>",
        f'<p>Machine-readable: <a href="{DOCUMENT_PATH}">{DOCUMENT_PATH}</a> '
        f"(OpenAPI {_e(doc['openapi'])}).</p>",
    ]
    for tag in doc.get("tags", []):
        parts.append(f"<h2 id='tag-{_e(tag['name'])}'>{_e(tag['name'])}</h2>")
        parts.extend(_operation_html(path, method, op) for path, method, op in _operations(doc, tag["name"]))
    parts.append("<h2 id=schemas>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        parts.append(f"<h3 id='schema-{_e(name)}'>{_e(name)}</h3>{_schema_html(schema)}")
    parts.append("</body></html>")
    return "".join(parts)


def _operations(doc: dict[str, Any], tag: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, operations in doc["paths"].items()
        for method, op in operations.items()
        if tag in op.get("tags", ())
    ]


def _operation_html(path: str, method: str, op: dict[str, Any]) -> str:
    role = op.get("x-voidllm-role") or ("public" if op.get("security") == [] else "any key")
    parts = [
        f"<details id='op-{_e(op['operationId'])}'><summary><span class='m {method}'>{method.upper()}</span>"
        f"<code>{_e(path)}</code> — {_e(op.get('summary', ''))}<span class=role>{_e(role)}</span></summary>",
    ]
    if op.get("description"):
        parts.append(f"<p>{_e(op['description'])}</p>")
    if op.get("parameters"):
        rows = "".join(
            f"<tr><td><code>{_e(p['name'])}</code></td><td>{_e(p['in'])}</td>"
            f"<td>{'yes' if p.get('required') else ''}</td><td>{_type_html(p['schema'])}</td></tr>"
            for p in op["parameters"]
        )
        parts.append(
            f"<table><tr><th>parameter</th><th>in</th><th>required</th><th>type</th></tr>{rows}</table>"
        )
    body = op.get("requestBody")
    if body:
        parts.append(f"<p>Request body: {_type_html(body['content']['application/json']['schema'])}</p>")
    responses = []
    for status, response in op["responses"].items():
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        described = _type_html(schema) if schema else _e(response.get("description") or _ref_name(response))
        responses.append(f"<li><b>{_e(status)}</b> {described}</li>")
    parts.append(f"<p>Responses:</p><ul>{''.join(responses)}</ul></details>")
    return "".join(parts)


def _schema_html(schema: dict[str, Any]) -> str:
    description = f"<p>{_e(schema['description'])}</p>" if schema.get("description") else ""
    properties = schema.get("properties")
    if not properties:
        return description + f"<pre>{_e(orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode())}</pre>"
    required = set(schema.get("required", ()))
    rows = "".join(
        f"<tr><td><code>{_e(name)}</code></td><td>{_type_html(prop)}</td>"
        f"<td>{'yes' if name in required else ''}</td>"
        f"<td>{_e(_default(prop))}</td></tr>"
        for name, prop in properties.items()
    )
    return (
        description
        + f"<table><tr><th>field</th><th>type</th><th>required</th><th>default</th></tr>{rows}</table>"
    )


def _type_html(schema: dict[str, Any]) -> str:
    """A short inline rendering of a schema: a link for a ``$ref``, ``array of X``, ``X or null``, ..."""
    if "$ref" in schema:
        name = _ref_name(schema)
        return f"<a href='#schema-{_e(name)}'>{_e(name)}</a>"
    if "anyOf" in schema:
        return " or ".join(_type_html(option) for option in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{_e(orjson.dumps(v).decode())}</code>" for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        return "array of " + (_type_html(items) if isinstance(items, dict) and items else "values")
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "object of " + (_type_html(schema["additionalProperties"]) or "values")
    text = kind if isinstance(kind, str) else "any"
    if schema.get("format"):
        text += f" ({schema['format']})"
    return _e(text)


def _default(schema: dict[str, Any]) -> str:
    return orjson.dumps(schema["default"]).decode() if "default" in schema else ""


def _ref_name(schema: dict[str, Any]) -> str:
    return str(schema.get("$ref", "")).rsplit("/", 1)[-1]


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
