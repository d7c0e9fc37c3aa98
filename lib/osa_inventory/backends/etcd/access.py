"""Credentials that may read a deployment's prefix but not write it.

etcd checks permissions per request, and there is no way for a user to ask
which keys it may write (listing roles is root's business). The plugin finds
out where it matters: the lock is the first key every changing run writes.
When etcd refuses that put as not permitted, the run goes on without the lock
(reading needs none: a version is read at one revision, so it is always whole)
and :func:`read_only_message` is what any write then says instead of storing.
"""

from __future__ import annotations

from .client import ACCESS_DOC, GRPC_PERMISSION_DENIED, EtcdRequestError


def write_denied(exc: BaseException) -> bool:
    """Whether ``exc`` is etcd refusing a request for lack of permission (not of authentication)."""
    return isinstance(exc, EtcdRequestError) and exc.code == GRPC_PERMISSION_DENIED


def read_only_message(username: str | None, prefix: str, where: str) -> str:
    """The one line a write gives when the credentials are read-only on ``prefix``."""
    who = f"etcd user {username!r}" if username else "this client (no username set)"
    return (f"the credentials are read-only: {who} may not write the keys under {prefix}/ on {where} "
            f"(etcd refused the lock key {prefix}/lock); this change needs a write and nothing was stored; "
            f"run it with a user that has a writer role on {prefix}/ (see {ACCESS_DOC})")
