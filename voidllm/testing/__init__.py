"""Test doubles that are real servers: the mock OpenAI-compatible upstream (:mod:`.mock_openai`), the mock
Anthropic, Gemini and Azure upstreams (:mod:`.mock_providers`), the mock MCP servers (:mod:`.mock_mcp`), and
the HTTP/1.1 server loop the first two share (:mod:`.h11server`).

The names are re-exported lazily so that ``python -m voidllm.testing.mock_openai`` does not import the
module twice (once as a package member, once as ``__main__``), which runpy warns about.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voidllm.testing.mock_openai import (
        DEFAULT_MODEL,
        FAIL_MODES,
        Behaviour,
        ClosedConnection,
        MockUpstream,
        ReceivedRequest,
        Reply,
        answer_in_memory,
        open_mock_upstream,
    )

__all__ = [
    "DEFAULT_MODEL",
    "FAIL_MODES",
    "Behaviour",
    "ClosedConnection",
    "MockUpstream",
    "ReceivedRequest",
    "Reply",
    "answer_in_memory",
    "open_mock_upstream",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from voidllm.testing import mock_openai

        return getattr(mock_openai, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
