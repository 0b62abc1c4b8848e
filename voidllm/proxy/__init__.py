"""The data plane: the raw ASGI handler of the proxied ``/v1`` routes and what it runs.

- ``handler.py``: :class:`Proxy`, the thin ASGI entry (intake, the exchange beside a disconnect watcher, the
  usage event to the writer, errors in the endpoint's envelope).
- ``intake.py``: key and client tags, body, limits admission, model resolution, body rewrite.
- ``exchange.py``: the ``Exchange`` record, the model and its fallbacks over attempt chains, the usage event.
- ``attempts.py``: one model's attempt chain (failover, hedging, breakers, cooldowns).
- ``relay.py``: relaying answers (buffered, binary, one stream relay), settling token reservations.
- ``calls.py``, ``messages.py``, ``headers.py``, ``endpoints.py``: upstream requests per provider, the
  Anthropic Messages API ingress, header policy, the proxied routes.
- ``jsonbody.py``, ``multipart.py``, ``sse.py``: sans-IO body parsing and rewriting, the SSE relay.
- ``demo.py``: the demo provider answered in process, a ``Transport`` (:mod:`voidllm.transport`) wrapping the
  h11 keep-alive pool.
- ``tokencount.py``: ``count_tokens`` estimated offline (tiktoken, the packaged ``encodings/o200k_base``) for
  models not served by Anthropic.
- ``guarding.py``, ``guardstream.py``: the prompt guard on the data plane (requests scanned, refused or
  redacted; answers redacted, streams event by event; findings counted), over the engine in
  :mod:`voidllm.guard`.
- ``metrics.py``: the data plane's Prometheus metrics.
"""
