"""Which deployment a prefix belongs to, and the refusals that keep deployments apart.

The marker ``P/deployment`` names the deployment stored at ``P`` (the ``[etcd]
deployment`` option of the run that created it; empty when that was unset). A run
whose own name differs is refused before it reads or writes anything, so two
deployments pointed at one prefix by mistake never merge. A prefix that contains,
or lies inside, another deployment's prefix is refused for writing, naming both.

Which deployments lie around a prefix is read prefix by prefix where the user
may not read them all: etcd refuses a whole transaction for one key outside
the user's permission, so one request for every parent would tell nothing
to a writer kept to its own prefix, even about a parent inside that prefix.
"""

from __future__ import annotations

import json

from ...errors import StorageError
from .client import GRPC_PERMISSION_DENIED, EtcdClient, EtcdRequestError, op_range
from .layout import MARKER_KIND, Keys, PrefixScan, ancestors, marker_of, other_deployment_at

MAX_NAME = 200


def check_name(raw: str | None) -> str:
    """The ``deployment`` option, checked: printable text without quotes, or empty."""
    name = (raw or "").strip()
    if len(name) > MAX_NAME or any(not c.isprintable() or c in "'\"" for c in name):
        raise StorageError(f"option deployment {name[:40]!r}: use up to {MAX_NAME} printable characters "
                           "without quotes, such as prod-eu1")
    return name


def marker_value(name: str, prefix: str, writer: str, when: str, previous: dict | None = None) -> bytes:
    """The marker for deployment ``name`` at ``prefix`` (keeping when it was created)."""
    marker = {"kind": MARKER_KIND, "format": 1, "deployment": name, "prefix": prefix,
              "created": (previous or {}).get("created", when), "writer": writer, "time": when}
    if previous is not None and previous.get("deployment") != name:
        marker["adopted_from"] = previous.get("deployment", "")
    return json.dumps(marker, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def stored_name(scan: PrefixScan) -> str | None:
    """The name of the deployment stored at the scanned prefix; None when nothing is stored."""
    if scan.marker is not None:
        marker = marker_of(scan.marker["value"])
        if marker is None:
            raise StorageError(
                f"{scan.keys.marker.decode()} is not a deployment marker of this program; it was changed "
                "by hand or belongs to another program; choose another prefix")
        return marker["deployment"]
    if scan.manifest is not None or scan.leftovers():
        return ""  # stored before deployments had names
    return None


def _shown(name: str) -> str:
    return f"deployment '{name}'" if name else "an unnamed deployment"


def check_identity(scan: PrefixScan, name: str, where: str, adopt: str) -> None:
    """Refuse when the prefix holds a deployment other than ``name``; ``adopt``: the command that relabels it."""
    stored = stored_name(scan)
    if stored is None or stored == name:
        return
    prefix = scan.keys.prefix
    head = f"etcd prefix {prefix} on {where} holds {_shown(stored)}, but this run is {_shown(name)}"
    if not name:
        advice = (f"if this is that deployment set [etcd] deployment = {stored} "
                  f"(or OSA_INVENTORY_ETCD_DEPLOYMENT={stored}), else give this deployment its own prefix")
    else:
        advice = (f"give this deployment its own [etcd] prefix, or, if the stored one is this deployment "
                  f"under another name, relabel it once with '{adopt}'")
    raise StorageError(f"{head}; nothing was read or written; {advice}")


def _deployments_at(client: EtcdClient, prefixes: list[str]) -> list[str]:
    """The prefixes among ``prefixes`` that hold a deployment (a manifest or marker of this program), in one request."""
    answer = client.txn([], [op_range(key) for other in prefixes for key in (Keys(other).manifest, Keys(other).marker)])
    found: list[str] = []
    for response in answer["responses"]:
        for kv in response.get("kvs", []):
            other = other_deployment_at(kv["key"], kv["value"])
            if other is not None and other not in found:
                found.append(other)
    return found


def deployments_around(client: EtcdClient, prefix: str) -> list[str]:
    """Prefixes of other deployments that contain ``prefix``, nearest first, among those this user may read.

    One request when every parent prefix may be read; else one per parent, and a
    parent the user may not read is left to the deployment there (if any), which
    sees this one under its own prefix and refuses to write.
    """
    around = ancestors(prefix)
    if not around:
        return []
    try:
        return _deployments_at(client, around)
    except EtcdRequestError as exc:
        if exc.code != GRPC_PERMISSION_DENIED:
            raise
    found: list[str] = []
    for other in around:
        try:
            found += _deployments_at(client, [other])
        except EtcdRequestError as exc:
            if exc.code != GRPC_PERMISSION_DENIED:
                raise
    return found


def check_nesting(prefix: str, where: str, inside: list[str], around: list[str], etcdctl: str) -> None:
    """Refuse a write at ``prefix`` when other deployments are ``inside`` it or ``around`` it.

    ``etcdctl`` is the command line that reaches the cluster as this run does (endpoints, user,
    certificates), for the advice to delete the moved deployment's old keys."""
    if inside:
        other = inside[0]
        more = f" (and {len(inside) - 1} more)" if len(inside) > 1 else ""
        raise StorageError(
            f"etcd prefix {prefix} on {where} contains the prefix {other} of another deployment{more}; "
            "deployments must not nest, and nothing was written; move that deployment to a prefix of its "
            f"own (docs/etcd.md, 'Deployments kept apart'), then delete its old keys with "
            f"'{etcdctl} del --prefix {other}/'")
    if around:
        other = around[0]
        raise StorageError(
            f"etcd prefix {prefix} on {where} lies inside the prefix {other} of another deployment; "
            "deployments must not nest, and nothing was written; move this deployment to a prefix outside "
            f"{other}/ (docs/etcd.md, 'Deployments kept apart'), then delete its old keys with "
            f"'{etcdctl} del --prefix {prefix}/'")
