"""The inventory lock: one key bound to a lease that a background thread keeps alive.

Shaped like etcd3gw's ``Lock`` (``Lock(name, ttl, client=...)``, ``acquire()``,
``release()``, ``refresh()``, ``is_acquired()``, a context manager), over this
package's client and :class:`~.lease.LeaseKeeper`. Unlike etcd3gw's, ``acquire()``
waits for a lock another run holds (up to ``timeout`` seconds, with jitter),
and the key's value says who holds it since when, for the message of a run
that gave up waiting.

The key's create revision (``revision``) is what every transaction of a write
compares, so a run whose lease died (and whose key another run took since)
changes nothing. A user that may read the prefix but not write it cannot put
the key: ``acquire()`` then returns False and sets ``read_only``, the run reads
without the lock (a version is read at one revision, so it is always whole)
and every write refuses (see :mod:`.access`).
"""

from __future__ import annotations

import contextlib
import random
import time

from ...errors import StorageError
from .access import write_denied
from .client import EtcdClient, EtcdError, cmp_create, op_put, op_range
from .lease import LeaseKeeper
from .parts import dumps, loads_or_none, utc_now, writer


class EtcdLock:
    """The lock key ``name`` (the whole key, e.g. ``P/lock``), held for at most ``ttl`` s after its holder died."""

    def __init__(self, name: bytes, ttl: int = 60, *, client: EtcdClient, timeout: float = 300.0):
        self.name = self.key = name
        self.ttl = ttl
        self.client = client
        self.timeout = timeout      # seconds acquire() waits for another holder
        self.lease = 0              # while held: the lease the key is bound to
        self.revision = 0           # while held: the key's create revision, compared by every write
        self.read_only = False      # acquire() found that these credentials may not write the key
        self._keeper: LeaseKeeper | None = None

    @property
    def where(self) -> str:
        return self.client.endpoints_text

    @property
    def lost(self) -> str | None:
        """Why the lease was lost while held (expired, revoked, not renewed in time), else None."""
        return self._keeper.lost if self._keeper is not None else None

    def acquire(self) -> bool:
        """Take the lock once it is free, waiting up to ``timeout`` s; True when held.

        False when etcd refuses these credentials the key (``read_only`` is then
        set); one line naming the holder when another run keeps it past the
        timeout, or the lease when it is lost while waiting.
        """
        try:
            lease, ttl = self.client.lease_grant(self.ttl)  # any user may in etcd 3.4; kept general
        except EtcdError as exc:
            if not write_denied(exc):
                raise
            self.read_only = True
            return False
        keeper = LeaseKeeper(self.client.clone(), lease, ttl or self.ttl)
        keeper.start()
        try:
            self.revision = self._take(lease, keeper)
        except BaseException as exc:
            keeper.stop()
            with contextlib.suppress(EtcdError):
                self.client.lease_revoke(lease, timeout=min(2.0, self.client.timeout))
            if write_denied(exc):
                self.read_only = True  # go on reading; writes refuse
                return False
            raise
        self.lease, self._keeper = lease, keeper
        return True

    def _take(self, lease: int, keeper: LeaseKeeper) -> int:
        """Put the lock key bound to ``lease`` once it is free; the key's create revision."""
        value = dumps({"holder": writer(), "since": utc_now(), "lease": f"{lease:x}"})
        started = time.monotonic()
        while True:
            answer = self.client.txn([cmp_create(self.key, 0)], [op_put(self.key, value, lease)],
                                     [op_range(self.key)])
            if answer["succeeded"]:
                return answer["revision"]
            kvs = answer["responses"][0]["kvs"] if answer["responses"] else []
            if kvs and kvs[0]["lease"] == lease:
                return kvs[0]["create_revision"]  # a retried request had taken it
            if keeper.lost:
                raise StorageError(f"the lease for the inventory lock {self.key.decode()} on "
                                   f"{self.where} {keeper.lost} while waiting; run again")
            waited = time.monotonic() - started
            if waited >= self.timeout:
                raise StorageError(
                    f"the inventory lock {self.key.decode()} on {self.where} is held by "
                    f"{_holder(kvs)}; gave up after {waited:.0f} s (lock_timeout); wait for that run "
                    f"to finish (a dead run's lock expires within {self.ttl} s)")
            # Jitter keeps waiting runs from polling in lockstep.
            time.sleep(min(random.uniform(0.02, 0.1), max(0.0, self.timeout - waited)))

    def release(self) -> bool:
        """Stop renewing and revoke the lease, which deletes the key; whether the lock was held.

        Also ends ``read_only``: the next ``acquire()`` finds out again.
        """
        keeper, lease = self._keeper, self.lease
        self._keeper, self.lease, self.revision, self.read_only = None, 0, 0, False
        if keeper is not None:
            keeper.stop()
            keeper.client.close()
        if lease:
            # If this fails the lease simply expires after ttl.
            with contextlib.suppress(EtcdError):
                self.client.lease_revoke(lease, timeout=min(2.0, self.client.timeout))
        return bool(lease)

    def refresh(self) -> int:
        """Renew the lease now (the keeper does so every third of the TTL); the seconds it has left."""
        if not self.lease:
            raise StorageError(f"the inventory lock {self.key.decode()} on {self.where} is not held; "
                               "acquire it first")
        return self.client.lease_keepalive(self.lease)

    def is_acquired(self) -> bool:
        """Whether etcd holds the key as this object put it (asked, not assumed: a lease may have died)."""
        if not self.revision:
            return False
        kvs = self.client.range(self.key)["kvs"]
        return bool(kvs) and kvs[0]["create_revision"] == self.revision and kvs[0]["lease"] == self.lease

    def __enter__(self) -> EtcdLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def _holder(kvs: list[dict]) -> str:
    if not kvs:
        return "another run"
    info = loads_or_none(kvs[0]["value"])
    try:
        return f"{info['holder']} since {info['since']}"
    except (KeyError, TypeError):
        return "another program"
