"""Where a deployment lives in Craton (its cloud and region, found by name) and what the region's variables say.

:class:`Region` finds the region named by the options (creating it and its
cloud when missing, if allowed), remembers its ids across calls (and from the
cache) and reads its variables. :func:`view_of` reads from those variables
the committed state record and the marks of writes (:mod:`.writers`): which
are unfinished on that state and which are over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ...errors import StorageError
from .. import change_records as records
from . import mapping, writers
from .client import CratonClient, CratonError
from .options import Options, uuid_key

LOG = logging.getLogger("osa_inventory.craton")

STATE_FORMAT = 2            # 2: unfinished writes are marks of their own with undo records
READABLE_FORMATS = (1, 2)   # 1 differs only in how an unfinished write was marked


class Region:
    """The region of ``opts`` in Craton, through ``client``."""

    def __init__(self, opts: Options, client: CratonClient):
        self.opts = opts
        self.client = client
        self.ids: tuple[Any, Any] | None = None   # (cloud_id, region_id)
        self._ids_checked = False                 # ids found by name in this process

    def find(self, create: bool, cached: dict | None) -> tuple[tuple[Any, Any] | None, dict]:
        """``((cloud_id, region_id), region variables)``, or ``(None, {})`` when missing and not created."""
        if self.ids is None:
            if cached and cached.get("cloud_id") is not None and cached.get("region_id") is not None:
                self.ids = (cached["cloud_id"], cached["region_id"])
        if self.ids is not None:
            try:
                region_vars = self.variables(self.ids[1])
            except CratonError as exc:
                if exc.status != 404:
                    raise
                region_vars = None  # the region was deleted: find (or create) it by name
            if region_vars is not None and (self._ids_checked or self._names_match(region_vars)):
                return self.ids, region_vars
            self.ids, self._ids_checked = None, False
        ids = self._lookup(create)
        if ids is None:
            return None, {}
        self.ids, self._ids_checked = ids, True
        try:
            return ids, self.variables(ids[1])
        except CratonError as exc:
            if exc.status == 404:
                raise StorageError(f"region {self.opts.region} (id {ids[1]}) vanished from {self.opts.url} while "
                                   "it was being read; another tool is deleting it; try again") from None
            raise

    def _names_match(self, region_vars: dict) -> bool:
        state = region_vars.get(mapping.STATE_KEY)
        return isinstance(state, dict) and state.get("cloud") == self.opts.cloud \
            and state.get("region") == self.opts.region

    def variables(self, region_id: Any) -> dict:
        """The variables of region ``region_id``, checked to be an object."""
        data = self.client.get(f"/regions/{region_id}/variables")
        variables = data.get("variables") if isinstance(data, dict) else None
        if not isinstance(variables, dict):
            raise StorageError(f"GET {self.opts.url}/v1/regions/{region_id}/variables answered without a "
                               "variables object; check that url points at the Craton API")
        return variables

    def _lookup(self, create: bool) -> tuple[Any, Any] | None:
        o = self.opts
        cloud_id = self._find_or_create("clouds", {"name": o.cloud}, {}, create, f"cloud {o.cloud}")
        if cloud_id is None:
            return None
        region_id = self._find_or_create("regions", {"name": o.region, "cloud_id": cloud_id},
                                         {"cloud_id": cloud_id}, create, f"region {o.region} of cloud {o.cloud}")
        return None if region_id is None else (cloud_id, region_id)

    def _find_or_create(self, plural: str, fields: dict, query: dict, create: bool, what: str) -> Any:
        found = self._find(plural, fields, query)
        if found is not None or not create:
            return found
        try:
            created = self.client.post(f"/{plural}", fields)
        except CratonError as exc:
            if exc.status != 409:
                raise
            # Another run created it first, or a retried POST already had: use that one.
            found = self._find(plural, fields, query)
            if found is None:
                raise StorageError(f"Craton at {self.opts.url} says {what} already exists (409) but it cannot be "
                                   "found; check its name and the project it belongs to") from None
            return found
        LOG.info("created %s in %s", what, self.opts.url)
        return created["id"]

    def _find(self, plural: str, fields: dict, query: dict) -> Any:
        # Not ?name=: Craton answers it with a project-wide get-by-name (404 when missing, and a
        # region of another cloud with the same name); a listing matched here is unambiguous.
        # Listings of admin users span every project, so the project is matched too when known.
        project = uuid_key(self.opts.project_id)
        found = [item["id"] for item in self.client.list_all(f"/{plural}", plural, query)
                 if all(item.get(k) == v for k, v in fields.items())
                 and (not project or uuid_key(item.get("project_id")) in ("", project))]
        if len(found) > 1:
            raise StorageError(f"Craton at {self.opts.url} lists {len(found)} {plural} named "
                               f"{fields['name']} (ids {', '.join(map(str, found[:5]))}), visible across projects "
                               "to an admin user; use the credentials of a user of the deployment's own project")
        return found[0] if found else None


@dataclass
class View:
    """What the region variables say about writes: the state record and the marks on it."""

    state: dict | None
    revision: Any
    marks: dict        # mark key -> mark of an unfinished write on this revision
    over: list         # mark keys of writes that are over (committed or superseded)
    records: dict = field(default_factory=dict)  # change record variables (key -> value)

    def same_as(self, other: View) -> bool:
        return mapping.same(self.state, other.state) and mapping.same(self.marks, other.marks)


def view_of(region_vars: dict, where: str) -> View:
    """The state record, the marks of unfinished writes on it, and the marks that are over.

    ``where`` names the region in messages."""
    state = region_vars.get(mapping.STATE_KEY)
    if state is not None:
        if not isinstance(state, dict) or state.get("format") not in READABLE_FORMATS:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise StorageError(f"region variable {mapping.STATE_KEY} has format {found!r}, not {STATE_FORMAT}; "
                               "it was written by another version of this plugin; upgrade it")
        if state.get("pending"):
            raise StorageError(
                f"{where}: a write by an older version of this plugin (on "
                f"{state['pending'].get('writer') or 'another host'}) was interrupted; finish it with that "
                "version (re-run the inventory there), then use this one")
    revision = state.get("revision") if state else None
    marks: dict = {}
    over: list = []
    for key, value in region_vars.items():
        if writers.is_mark_key(key):
            if isinstance(value, dict) and value.get("base") == revision:
                marks[key] = value
            else:
                over.append(key)
    return View(state, revision, marks, over, records.stored(region_vars))
