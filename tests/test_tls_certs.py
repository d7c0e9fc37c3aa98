"""The test PKI passes a strict X.509 verifier on every Python; the legacy CA does not."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from tls_certs import legacy_ca, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def _strict_client(cafile: str, pki: dict[str, str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # the default from Python 3.13 on; forced here on every version
    ctx.load_cert_chain(pki["client.pem"], pki["client.key"])
    return ctx


def _handshake(client: ssl.SSLContext, pki: dict[str, str]) -> tuple[dict, list]:
    """One TLS handshake over loopback; the server verifies the client certificate strictly too.

    Returns (the server certificate the client saw, errors the server saw)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki["server.pem"], pki["server.key"])
    server.load_verify_locations(pki["ca.pem"])
    server.verify_mode = ssl.CERT_REQUIRED
    server.verify_flags |= ssl.VERIFY_X509_STRICT
    listener = socket.create_server(("127.0.0.1", 0))
    server_errors: list = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                server_errors.append(tls.getpeercert()["subject"])
        except (ssl.SSLError, OSError) as exc:
            server_errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw, \
                client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            seen = tls.getpeercert()
            tls.sendall(b"x")  # with TLS 1.3 the client certificate is checked after the handshake
    finally:
        thread.join(10)
        listener.close()
    return seen, server_errors


def test_the_pki_passes_strict_verification_both_ways(pki):
    seen, server_side = _handshake(_strict_client(pki["ca.pem"], pki), pki)
    assert ("commonName", "osa-server") in seen["subject"][0]
    assert ("IP Address", "127.0.0.1") in seen["subjectAltName"]
    assert server_side == [((("commonName", "osa-client"),),)]


def test_the_legacy_ca_is_refused_by_a_strict_verifier_only(pki, tmp_path):
    legacy = legacy_ca(pki, str(tmp_path / "legacy.pem"))
    with pytest.raises(ssl.SSLCertVerificationError) as err:
        _handshake(_strict_client(legacy, pki), pki)
    assert "key usage" in err.value.verify_message
    # Without the strict flag the same CA is accepted: only strictness tells them apart.
    lax = ssl.create_default_context(cafile=legacy)
    lax.verify_flags &= ~ssl.VERIFY_X509_STRICT
    lax.load_cert_chain(pki["client.pem"], pki["client.key"])
    seen, _ = _handshake(lax, pki)
    assert ("commonName", "osa-server") in seen["subject"][0]
