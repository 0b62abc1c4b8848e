"""Upstream HTTP for the hot paths: the :class:`~voidllm.transport.base.Transport` contract (one request,
headers as soon as they are in, the body as a stream, errors without data) in :mod:`voidllm.transport.base`,
and :mod:`voidllm.transport.h11pool`, the trio/h11 keep-alive pool that implements it. The LLM proxy sends
every provider request through it; the upstream MCP client (:mod:`voidllm.mcp.upstream`) its JSON-RPC posts,
through a subclass that applies the URL policy when connecting."""
