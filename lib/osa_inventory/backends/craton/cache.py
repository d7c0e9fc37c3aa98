"""The Craton plugin's local cache (:mod:`..service_cache`): the last inventory loaded or written, and the
Craton ids behind it (``cloud_id``, ``region_id``, and ``hosts``: name -> host id). One file per (url,
project, cloud, region).
"""

from __future__ import annotations

from typing import Any

from ..service_cache import ServiceCache


class Cache(ServiceCache):
    """The Craton cache file: its record also holds the hosts' ids."""

    fields = ("hosts",)

    def __init__(self, folder: str, key: tuple[str, ...], enabled: bool = True):
        super().__init__("Craton", folder, key, enabled)

    def save(self, *, cloud_id: Any, region_id: Any, revision: str, hosts: dict,  # type: ignore[override]
             inventory: dict) -> None:
        super().save(revision=revision, inventory=inventory, cloud_id=cloud_id, region_id=region_id, hosts=hosts)
