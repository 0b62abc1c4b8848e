"""Every provider the gateway speaks to, and what each is and can do: one :class:`Provider` record per name.

The rest of the gateway asks this registry instead of comparing provider names: the config and admin
checks (the names, each provider's required fields), the probes (credential headers), the proxy (which
adapter builds the upstream request, whether answers are translated back, multipart bodies, Anthropic's
own ``/v1/messages``), and the demo provider's special cases (no health probes, its own ``owned_by``).

==============  ====================  =============  ==========  =========  ========  ======================
provider        credentials           adapter        translated  multipart  messages  required fields
==============  ====================  =============  ==========  =========  ========  ======================
``openai``      bearer                passthrough    no          yes        no
``anthropic``   ``x-api-key``         Anthropic      yes         no         native
``azure``       ``api-key``           Azure          no          yes        no        ``azure_deployment``
``gemini``      ``x-goog-api-key``    Gemini         yes         no         no
``vertex``      bearer (OAuth token)  Gemini/Vertex  yes         no         no        ``gcp_project``,
                                                                                      ``gcp_location``
``vllm``,       bearer                passthrough    no          yes        no
``ollama``,
``custom``
``mock``        bearer                passthrough    no          yes        no        (the built-in demo)
==============  ====================  =============  ==========  =========  ========  ======================

*Passthrough* (no adapter) means OpenAI-shaped: the client's body, already rewritten by the proxy, goes to
``<base_url>/<path>`` with the bearer header, and the answer is relayed as it is. Azure is OpenAI-shaped
too, but its adapter builds the URL and carries the key in ``api-key``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import attrs

from voidllm.providers.anthropic import AnthropicAdapter
from voidllm.providers.azure import AzureAdapter
from voidllm.providers.base import Adapter, Target
from voidllm.providers.credentials import anthropic_key, azure_key, bearer, google_key
from voidllm.providers.gemini import GeminiAdapter

__all__ = ["NAMES", "PROVIDERS", "Provider", "credential_headers"]


@attrs.frozen
class Provider:
    """What one provider is and can do (see the module docstring)."""

    name: str
    credentials: Callable[[str], dict[str, str]]
    """The headers that carry a (non-empty) API key: a scheme of :mod:`voidllm.providers.credentials`."""
    adapter: Adapter | None = None
    """Builds the upstream request from the parsed JSON body; ``None``: OpenAI-shaped passthrough."""
    translated: bool = False
    """Answers come in the provider's own API and ``adapter`` translates them back to the OpenAI shape."""
    multipart_url: Callable[[str, Target], str] | None = None
    """Where a multipart body goes, sent as it is, when ``adapter`` builds the URL (Azure)."""
    native_messages: bool = False
    """Speaks Anthropic's ``/v1/messages`` (and ``count_tokens``) itself: those requests go as they are."""
    builtin_demo: bool = False
    """The demo provider the gateway answers in process (:mod:`voidllm.proxy.demo`)."""
    required_fields: tuple[str, ...] = ()
    """The target fields (of a model or deployment) this provider cannot do without."""

    @property
    def translator(self) -> Adapter | None:
        """The adapter that translates answers back to the OpenAI shape; ``None`` if they have it already."""
        return self.adapter if self.translated else None

    @property
    def accepts_multipart(self) -> bool:
        """Whether multipart bodies (uploads: audio transcriptions, images) can be sent as they are."""
        return self.adapter is None or self.multipart_url is not None


_AZURE = AzureAdapter()

PROVIDERS: Mapping[str, Provider] = MappingProxyType(
    {
        p.name: p
        for p in (
            Provider("openai", bearer),
            Provider("anthropic", anthropic_key, AnthropicAdapter(), translated=True, native_messages=True),
            Provider(
                "azure", azure_key, _AZURE, multipart_url=_AZURE.url, required_fields=("azure_deployment",)
            ),
            Provider("gemini", google_key, GeminiAdapter(), translated=True),
            Provider(
                "vertex",
                bearer,
                GeminiAdapter(vertex=True),
                translated=True,
                required_fields=("gcp_project", "gcp_location"),
            ),
            Provider("vllm", bearer),
            Provider("ollama", bearer),
            Provider("custom", bearer),
            Provider("mock", bearer, builtin_demo=True),
        )
    }
)
"""Every provider by name, in the order configuration errors list them."""

NAMES: tuple[str, ...] = tuple(PROVIDERS)
"""The provider names a model or deployment may give."""


def credential_headers(provider: str, api_key: str) -> dict[str, str]:
    """The headers that carry ``api_key`` to an upstream of ``provider``; none without a key (a local
    ``ollama`` or ``vllm`` needs none).

    One function for every request the gateway makes on its own (the upstream health probes of
    :mod:`voidllm.routing.health` and the connection test of :mod:`voidllm.admin.probes`), matching what the
    adapters send on proxied requests.
    """
    if not api_key:
        return {}
    return PROVIDERS[provider].credentials(api_key)
