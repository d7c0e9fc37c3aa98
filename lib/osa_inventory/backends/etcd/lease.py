"""The background thread that keeps the etcd lock's lease alive while a run holds it."""

from __future__ import annotations

import threading
import time

from .client import EtcdClient, EtcdError


class LeaseKeeper(threading.Thread):
    """Keeps a lease alive from the background; records why if it could not."""

    def __init__(self, client: EtcdClient, lease: int, ttl: int):
        super().__init__(name=f"etcd-lease-{lease:x}", daemon=True)
        self.client, self.lease, self.ttl = client, lease, ttl
        self.stop_event = threading.Event()
        self.lost: str | None = None
        self.last_ok = time.monotonic()

    def run(self) -> None:
        interval = max(0.2, self.ttl / 3.0)
        while not self.stop_event.wait(interval):
            try:
                left = self.client.lease_keepalive(self.lease, timeout=max(0.5, min(self.client.timeout, interval)))
            except EtcdError as exc:
                if time.monotonic() - self.last_ok >= self.ttl:
                    self.lost = f"could not be renewed for {self.ttl} s ({exc})"
                    return
                continue
            if left <= 0:
                self.lost = "expired or was revoked"
                return
            self.last_ok = time.monotonic()

    def stop(self) -> None:
        """Stop renewing and wait for the thread to end."""
        self.stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=self.client.timeout + 1)
