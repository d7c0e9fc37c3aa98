"""Test certificates that a strict X.509 verifier accepts, and a legacy CA that it refuses.

Python 3.13 verifies with ``VERIFY_X509_STRICT`` by default (and urllib3, hence
requests, follows it): a CA must carry ``basicConstraints = critical, CA:TRUE``
and ``keyUsage = critical, keyCertSign, cRLSign``, and issued certificates need
an authority key identifier. ``make_pki`` issues such a CA, a server certificate
for 127.0.0.1/localhost (usable as a client too: etcd's gateway presents it to its
own gRPC server) and a client certificate. ``legacy_ca`` re-issues the same CA
(same key and name, so it still validates those certificates) the way
``openssl req -x509`` does with its default configuration: no keyUsage.

Keys are EC P-256: fast to make, accepted by etcd and OpenSSL alike.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FILES = ("ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key")
_CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "osa test CA")])


def make_pki(folder: str) -> dict[str, str]:
    """Write a strict-clean CA, server and client certificate with their keys into ``folder``.

    Returns {file name: path} for every name in ``FILES``."""
    os.makedirs(folder, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    paths = {name: os.path.join(folder, name) for name in FILES}
    _write_key(paths["ca.key"], ca_key)
    _write_cert(paths["ca.pem"], _ca_cert(ca_key, key_usage=True))
    for name, usages, sans in (
            ("server", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
             [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            ("client", [ExtendedKeyUsageOID.CLIENT_AUTH], [x509.DNSName("osa-client")])):
        key = ec.generate_private_key(ec.SECP256R1())
        _write_key(paths[f"{name}.key"], key)
        _write_cert(paths[f"{name}.pem"], _leaf_cert(ca_key, key, f"osa-{name}", usages, sans))
    return paths


def legacy_ca(pki: dict[str, str], path: str) -> str:
    """Re-issue the CA of ``pki`` into ``path`` without keyUsage (what a strict verifier refuses)."""
    with open(pki["ca.key"], "rb") as fh:
        ca_key = serialization.load_pem_private_key(fh.read(), password=None)
    _write_cert(path, _ca_cert(ca_key, key_usage=False))
    return path


def reissue_ca_as_advised(pki: dict[str, str], message: str, path: str) -> str:
    """Do what a strict-CA error ``message`` advises, with the openssl CLI: re-issue the CA of
    ``pki`` (same key and name) with the extensions the message names, into ``path``."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to follow the advice")
    named = re.search(r"re-issue the CA with (.+?) \(keep its key", message)
    assert named, message
    config = os.path.join(os.path.dirname(path), "openssl-min.cnf")
    with open(config, "w") as fh:  # no default extensions: only those the advice names
        fh.write("[req]\ndistinguished_name = dn\n[dn]\n")
    addext = [arg for ext in named.group(1).split(" and ") for arg in ("-addext", ext)]
    subprocess.run(["openssl", "req", "-x509", "-new", "-key", pki["ca.key"], "-subj", "/CN=osa test CA",
                    "-days", "2", "-config", config, *addext, "-out", path], check=True, capture_output=True)
    return path


def _builder(subject: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(_CA_NAME).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _ca_cert(ca_key: ec.EllipticCurvePrivateKey, key_usage: bool) -> x509.Certificate:
    builder = _builder(_CA_NAME, ca_key.public_key()).add_extension(
        x509.BasicConstraints(ca=True, path_length=None), critical=True)
    if key_usage:
        builder = builder.add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
    return builder.sign(ca_key, hashes.SHA256())


def _leaf_cert(ca_key: ec.EllipticCurvePrivateKey, key: ec.EllipticCurvePrivateKey, name: str,
               usages: list, sans: list) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (_builder(subject, key.public_key())
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))


def _usage(**on: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: on.get(n, False) for n in names})


def _write_key(path: str, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_cert(path: str, cert: x509.Certificate) -> None:
    with open(path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
