"""``POST /v1/messages/count_tokens`` for models not served by Anthropic: an estimate, said to be one.

Only a provider knows its own tokenizer, and only Anthropic has a ``count_tokens`` endpoint: a model served by
``anthropic`` upstreams only gets the request passed through (:mod:`voidllm.proxy.messages`); for every other
model (OpenAI-compatible, Azure, Gemini, Vertex, self-hosted, the demo provider, or a mix of providers) the
gateway counts itself and answers ``{"input_tokens": N}`` with the header ``voidllm-token-count: estimate``
(:data:`ESTIMATE_HEADER`), so a client can tell an estimate from a provider's count.

The tokenizer: tiktoken (OpenAI's BPE tokenizer, MIT, released with every new OpenAI encoding) with the
``o200k_base`` encoding, the one of GPT-4o and later OpenAI models: exact for them, close for the other large
BPE vocabularies. It works offline: tiktoken would download its encoding files on first use, and the gateway
may reach nothing but its upstreams, so the file ships in this package (``encodings/o200k_base.tiktoken.gz``,
OpenAI's published file byte for byte, MIT like tiktoken: ``encodings/LICENSE``), is checked against the
SHA-256 tiktoken pins for it (:data:`O200K_SHA256`) and handed to ``tiktoken.Encoding`` directly, so nothing
is fetched and nothing is cached on disk. Hugging Face ``tokenizers`` was the alternative: it needs a
``tokenizer.json`` per model family all the same (the same shipping question), brings more with it, and is
no better a guess for a model it was not made for.

What is counted, an estimate of what the upstream would be sent (the request translated to OpenAI's chat
shape): the system prompt's text; per message :data:`MESSAGE_TOKENS` of framing, its text, tool calls (name
and JSON input), tool results and thinking text; each tool definition as its JSON; :data:`REPLY_TOKENS` for
the reply's priming (the framing numbers are OpenAI's cookbook's for chat messages). An image, or a document
other than plain text, counts a flat :data:`IMAGE_TOKENS` (about Anthropic's count for its largest image at
the default resolution: the pixels are never decoded); any other block counts as its JSON.

Cost: the encoding is loaded once per process, at the first estimate (about 0.3 s and 70 MB); loading and
counting run in a worker thread, so the event loop never waits on them. The content is only counted, in
memory: never logged, stored or put in an error message (a malformed body's 400 names the field only).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson
import trio

from voidllm.errors import BadRequestError
from voidllm.routing.registry import Model

if TYPE_CHECKING:
    import tiktoken

ESTIMATE_HEADER = ("voidllm-token-count", "estimate")
"""On every ``count_tokens`` answer the gateway computed itself."""

ENCODING_FILE = "encodings/o200k_base.tiktoken.gz"
"""The encoding, inside the package ``voidllm.proxy``: OpenAI's file, gzip-compressed."""

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
"""The SHA-256 of OpenAI's ``o200k_base.tiktoken``, uncompressed (``tiktoken_ext.openai_public`` pins it)."""

# o200k_base's pre-tokenizer pattern, as tiktoken_ext.openai_public defines it.
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_O200K_SPECIAL = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}

MESSAGE_TOKENS = 3
REPLY_TOKENS = 3
IMAGE_TOKENS = 1600

_lock = threading.Lock()
_loaded: list[tiktoken.Encoding] = []


def estimated(model: Model) -> bool:
    """Whether ``count_tokens`` for this model is answered by the gateway: unless every upstream of it is an
    ``anthropic`` one (a model mixing providers would otherwise get a count or a 400 by the router's pick)."""
    return not all(upstream.provider == "anthropic" for upstream in model.upstreams)


def encoding() -> tiktoken.Encoding:
    """The ``o200k_base`` encoding from the packaged file, loaded once per process (thread-safe; blocks).

    Raises:
        RuntimeError: the packaged file does not hold OpenAI's ``o200k_base`` (a broken installation).
    """
    with _lock:
        if not _loaded:
            _loaded.append(_load())
        return _loaded[0]


def _load() -> tiktoken.Encoding:
    import tiktoken  # with its native library (about 1.3 MB): only once a count is asked for

    data = gzip.decompress(resources.files("voidllm.proxy").joinpath(ENCODING_FILE).read_bytes())
    if hashlib.sha256(data).hexdigest() != O200K_SHA256:
        raise RuntimeError(f"voidllm/proxy/{ENCODING_FILE} is not o200k_base")
    ranks = {base64.b64decode(token): int(rank) for token, rank in map(bytes.split, data.splitlines())}
    return tiktoken.Encoding(
        "o200k_base", pat_str=_O200K_PATTERN, mergeable_ranks=ranks, special_tokens=_O200K_SPECIAL
    )


async def estimate(payload: Mapping[str, Any]) -> bytes:
    """The ``count_tokens`` answer for a Messages API body, computed in a worker thread.

    Raises:
        BadRequestError: ``messages``, ``system`` or ``tools`` (or a message, its content or a block) of the
            wrong type; names the field.
    """
    texts, fixed = _parts(payload)
    count = await trio.to_thread.run_sync(_count, texts)
    return orjson.dumps({"input_tokens": count + fixed})


def _count(texts: list[str]) -> int:
    tokenizer = encoding()
    return sum(len(tokenizer.encode_ordinary(text)) for text in texts)


def _parts(payload: Mapping[str, Any]) -> tuple[list[str], int]:
    """The texts to tokenize and the tokens counted without the tokenizer (framing, images)."""
    texts: list[str] = []
    fixed = REPLY_TOKENS
    system = payload.get("system")
    if system is not None:
        fixed += _content(system, "system", texts)
    messages = payload.get("messages")
    if not isinstance(messages, list):
        raise BadRequestError("messages: must be an array", extra={"field": "messages"})
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or "content" not in message:
            raise BadRequestError(
                f"messages.{index}: must be an object with content", extra={"field": f"messages.{index}"}
            )
        fixed += MESSAGE_TOKENS + _content(message["content"], f"messages.{index}.content", texts)
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise BadRequestError("tools: must be an array", extra={"field": "tools"})
        texts.extend(orjson.dumps(tool).decode() for tool in tools)
    return texts, fixed


def _content(content: Any, field: str, texts: list[str]) -> int:
    """Add a content's texts (a string or a list of blocks); return its tokens counted without tokenizing."""
    if isinstance(content, str):
        texts.append(content)
        return 0
    if not isinstance(content, list):
        raise BadRequestError(f"{field}: must be a string or an array of blocks", extra={"field": field})
    fixed = 0
    for index, block in enumerate(content):
        if not isinstance(block, dict):
            raise BadRequestError(f"{field}.{index}: must be an object", extra={"field": f"{field}.{index}"})
        fixed += _block(block, f"{field}.{index}", texts)
    return fixed


def _block(block: dict[str, Any], field: str, texts: list[str]) -> int:
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        texts.append(block["text"])
    elif kind == "thinking" and isinstance(block.get("thinking"), str):
        texts.append(block["thinking"])
    elif kind in ("tool_use", "server_tool_use"):
        texts.append(str(block.get("name", "")))
        texts.append(orjson.dumps(block.get("input", {})).decode())
    elif kind == "tool_result":
        return _content(block.get("content", ""), f"{field}.content", texts)
    elif kind == "document" and _text_source(block.get("source")):
        texts.append(block["source"]["data"])
    elif kind in ("image", "document"):
        return IMAGE_TOKENS
    else:
        texts.append(orjson.dumps(block).decode())
    return 0


def _text_source(source: Any) -> bool:
    return isinstance(source, dict) and source.get("type") == "text" and isinstance(source.get("data"), str)
