"""The admin port's TLS files (``server.admin.tls``), checked when ``voidllm serve`` starts.

Parsing the configuration only checks that ``cert`` and ``key`` are set together with ``enabled``; before it
binds, ``voidllm serve`` loads them the way the server will (:func:`check_admin_tls`), so a missing or
unreadable file, a file that is not PEM, a key that does not match the certificate or a key protected by a
passphrase (the server could only ask for it on a terminal) stops the start with the field's name, like any
other invalid setting.
"""

from __future__ import annotations

import ssl

from voidllm.config.errors import ConfigError
from voidllm.config.models import Config

__all__ = ["check_admin_tls"]


def _no_passphrase() -> bytes:
    return b""  # an encrypted key then fails to load instead of prompting on a terminal


def check_admin_tls(config: Config) -> None:
    """Load the admin port's certificate chain and key when TLS is on.

    Raises:
        ConfigError: a file cannot be read, or the two do not load as a PEM certificate chain and its key.
    """
    tls = config.server.admin.tls
    if not tls.enabled:
        return
    problems = []
    for field, path in (("cert", tls.cert), ("key", tls.key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            problems.append(f"server.admin.tls.{field}: cannot read {path}: {exc.strerror or exc}")
    if not problems:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(tls.cert, tls.key, password=_no_passphrase)
        except ssl.SSLError as exc:
            problems.append(
                f"server.admin.tls: cannot load {tls.cert} and {tls.key} ({exc.reason or exc.strerror}): "
                "cert must be a PEM certificate chain and key its unencrypted PEM private key"
            )
    if problems:
        raise ConfigError(problems, source="server.admin.tls")
