"""The prompt guard's engine: finds credentials and personal data in text, counts, redacts or blocks them.

Pure and sans-IO: plain values in, values out; no I/O, no trio, no configuration import. The proxy (which
walks each request and answer) and the stores of per-scope policies build on it. Zero knowledge: findings
are kinds, positions and counts; no matched value ever reaches a repr, an exception message or an outcome.

Modules:

- :mod:`~voidllm.guard.kinds`: the vocabulary of finding kinds, their groups and placeholder labels;
- :mod:`~voidllm.guard.policy`: ``Mode``, ``GuardPolicy``, ``merge`` (most restrictive wins), the strict
  parser (``parse_policy``) used by the admin API and ``voidllm.yaml``;
- :mod:`~voidllm.guard.detect`: the detectors (one Hyperscan prefilter pass, ``re`` candidates, each
  validated by checksum or structure with ``python-stdnum`` and ``phonenumbers``);
- :mod:`~voidllm.guard.scan`: ``RequestGuard`` (one request: placeholders, counts), ``Outcome``;
- :mod:`~voidllm.guard.walk`: the text parts of OpenAI, Anthropic and MCP ``tools/call`` bodies;
- :mod:`~voidllm.guard.stream`: ``StreamRedactor`` for streamed answers.
"""

from voidllm.guard.detect import Finding, find
from voidllm.guard.kinds import ALL_KINDS, CREDENTIALS, GROUPS, PII
from voidllm.guard.policy import OFF, GuardPolicy, GuardPolicyError, Mode, dump_policy, merge, parse_policy
from voidllm.guard.scan import Outcome, RequestGuard, redact_text, scan
from voidllm.guard.stream import StreamRedactor
from voidllm.guard.walk import guard_anthropic, guard_mcp_call, guard_openai, map_strings, scan_strings

__all__ = [
    "ALL_KINDS",
    "CREDENTIALS",
    "GROUPS",
    "OFF",
    "PII",
    "Finding",
    "GuardPolicy",
    "GuardPolicyError",
    "Mode",
    "Outcome",
    "RequestGuard",
    "StreamRedactor",
    "dump_policy",
    "find",
    "guard_anthropic",
    "guard_mcp_call",
    "guard_openai",
    "map_strings",
    "merge",
    "parse_policy",
    "redact_text",
    "scan",
    "scan_strings",
]
