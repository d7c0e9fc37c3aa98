"""The ``url`` option of a backend that talks to a REST service (Craton, NetBox): checked once, one way."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import StorageError


def service_root(url: str, example: str, credentials: str, api_suffix: str) -> str:
    """``url`` as the service's root (``api_suffix``, e.g. ``/v1``, and trailing slashes dropped), or a
    one-line refusal: unset (``example`` shows one), not http(s), with credentials (``credentials`` names
    the options that carry them), with a query or fragment."""
    if not url:
        raise StorageError(f"option url is not set; give {example}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StorageError(f"option url = {url!r} is not an http:// or https:// URL")
    if parts.username or parts.password:
        raise StorageError(f"option url must not carry credentials; use {credentials}")
    if parts.query or parts.fragment:
        raise StorageError(f"option url = {parts.scheme}://{parts.netloc}{parts.path} must not have a query "
                           "or fragment")
    path = parts.path.rstrip("/")
    if path.endswith(api_suffix):
        path = path[:-len(api_suffix)]
    return f"{parts.scheme}://{parts.netloc}{path}"
