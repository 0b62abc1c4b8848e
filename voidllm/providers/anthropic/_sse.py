"""Server-sent events out: the OpenAI and Anthropic event shapes the two stream translators write.

Reading is :class:`voidllm.sse.FieldReader`'s, one complete line at a time: both directions translated here
(Anthropic's stream and OpenAI's chunk stream) send one JSON document per ``data:`` line, so each line is
translated the moment it is complete, without waiting for the blank line; ``data:`` lines are not joined into
one multi-line payload.
"""

from __future__ import annotations

import orjson


def anthropic_event(payload: dict[str, object]) -> bytes:
    """One Anthropic-style event: an ``event:`` line naming the payload's ``type``, then a ``data:`` line."""
    kind = payload["type"]
    assert isinstance(kind, str)
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


OPENAI_DONE = b"data: [DONE]\n\n"
