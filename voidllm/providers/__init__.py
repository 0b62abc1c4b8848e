"""Providers: what each one is and can do, and pure translation between the OpenAI-compatible API and each
provider's own (no I/O).

- ``registry``: one :class:`~voidllm.providers.registry.Provider` record per provider name (credentials,
  adapter, translated answers, multipart, native ``/v1/messages``, the built-in demo, required target
  fields); everything else asks it instead of comparing provider names.
- ``credentials``: the header schemes that carry an upstream's API key, and every header name they use.
- ``base``: what every adapter offers (:class:`~voidllm.providers.base.Adapter`), targets, calls, usage.
- ``passthrough``: OpenAI-shaped upstreams, and the event-stream framing the translators share.
- ``azure``: Azure OpenAI's URL scheme and ``api-key`` around unchanged OpenAI bodies.
- ``anthropic``: Anthropic's Messages API both ways (egress adapter, ``/v1/messages`` ingress).
- ``gemini``: the Gemini and Vertex AI adapter.
"""
