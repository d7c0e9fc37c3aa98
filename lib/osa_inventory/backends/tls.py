"""What went wrong in a TLS handshake, in words a deployer can act on.

``requests`` buries the cause several exceptions deep (requests' SSLError ->
urllib3's MaxRetryError -> urllib3's SSLError -> ssl.SSLCertVerificationError),
and its text is cluttered with object reprs. ``tls_reason`` digs out the
cause; ``strict_ca_advice`` explains the failures that only a strict verifier
reports: Python 3.13 turns on ``VERIFY_X509_STRICT`` by default (urllib3 follows
it), and CAs made the quick way (``openssl req -x509`` without extensions) lack
the keyUsage extension that strict mode requires, so a CA that worked under
3.12 is refused under 3.13.
"""

from __future__ import annotations

import ssl
import sys

# Handshake failures told apart by OpenSSL's wording (lower case).
_MARKERS = ("wrong version number", "certificate required", "unknown ca", "bad certificate",
            "hostname mismatch", "record layer failure", "certificate unknown", "handshake failure")

# Verification messages that only strict mode produces, all fixed by re-issuing the certificate.
_STRICT_ONLY = ("does not include key usage", "not marked critical", "key identifier missing",
                "missing authority key identifier", "missing subject key identifier")

CA_EXTENSIONS = "basicConstraints = critical, CA:TRUE and keyUsage = critical, keyCertSign, cRLSign"


def tls_reason(exc: BaseException) -> str:
    """The cause of a TLS failure raised by requests/urllib3/ssl, on one short line.

    ``certificate verify failed: <OpenSSL's reason>`` when verification failed,
    else the handshake alert, else ``handshake failed``."""
    verify = _verify_error(exc)
    if verify is not None:
        detail = " ".join(str(verify.verify_message or "").split())
        return f"certificate verify failed: {detail}" if detail else "certificate verify failed"
    text = " ".join(_chain_text(exc).lower().split())
    if "certificate verify failed" in text:
        return "certificate verify failed"
    return next((marker for marker in _MARKERS if marker in text), "handshake failed")


def strict_ca_advice(reason: str, option: str, ca_file: str | None) -> str | None:
    """How to fix a certificate that only strict verification refuses; None for other reasons.

    ``option`` names the setting that points at the CA (e.g. ``ca_cert``), ``ca_file``
    its value (None: the default CA bundle)."""
    lowered = reason.lower()
    if not any(marker in lowered for marker in _STRICT_ONLY):
        return None
    python = f"Python {sys.version_info[0]}.{sys.version_info[1]}"
    source = f"{option} = {ca_file}" if ca_file else "the default CA bundle"
    if "ca cert" in lowered:
        return (f"{python} verifies certificates strictly and the CA in {source} lacks required "
                f"extensions: re-issue the CA with {CA_EXTENSIONS} (keep its key so the certificates "
                f"it signed stay valid) and point {option} at the new file")
    return (f"{python} verifies certificates strictly and the server's certificate lacks required "
            f"extensions: re-issue it with subjectKeyIdentifier and authorityKeyIdentifier from the CA "
            f"in {source}")


def _verify_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    for link in _chain(exc):
        if isinstance(link, ssl.SSLCertVerificationError):
            return link
    return None


def _chain_text(exc: BaseException) -> str:
    return " ".join(str(link) for link in _chain(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception under it: causes, contexts, urllib3's ``reason`` and
    exceptions passed as arguments (requests wraps urllib3's error that way)."""
    found: list[BaseException] = []
    todo = [exc]
    while todo:
        link = todo.pop(0)
        if any(link is seen for seen in found):
            continue
        found.append(link)
        nested = [getattr(link, "reason", None), link.__cause__, link.__context__, *link.args]
        todo.extend(n for n in nested if isinstance(n, BaseException))
    return found
