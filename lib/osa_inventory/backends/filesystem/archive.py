"""The filesystem backend's backup archive, ``backup_openstack_inventory.tar``: read bounded, rewritten whole.

One tar member per earlier version of ``openstack_inventory.json``, in
order, named ``openstack_inventory.json-YYYYmmdd_HHMMSS.json`` (``_02``...
within one second) and dated by when that version was written, as OSA's
tools read it.

* The archive is a store file like the others (:mod:`osa_inventory.storage.store_files`):
  one that is a link, owned by another user, writable by group or others or
  with a second hard link is not used at all (``untrusted`` says why), so its
  versions are never listed, restored or carried into a new archive.
* It is read with the project's bounded reader: at most
  :data:`MAX_ARCHIVE_BYTES`, each member at most an inventory's size limit,
  at most :data:`MAX_MEMBERS` members (or ``backups``, if higher).
* A truncated or partly overwritten archive still gives every member before
  the damage (``damage`` says what stopped the reading).
* :func:`holds_current` recognises the member a killed or failed write left
  for the version that is still current (the archive is rewritten before
  the inventory is replaced), so that version is never archived, listed or
  kept twice.
"""

from __future__ import annotations

import datetime as _dt
import io
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...bounded import MAX_INVENTORY_BYTES, MiB
from ...storage.store_files import DamagedFile, Folder, UntrustedFile

if TYPE_CHECKING:  # tarfile is imported where an archive is read or written: a run that stores nothing needs none
    import tarfile

    Member = tuple[tarfile.TarInfo, bytes]

BACKUP_NAME = "backup_openstack_inventory.tar"
MEMBER_PREFIX = "openstack_inventory.json-"
#: 15 versions of a 3000-host inventory take about 75 MiB; this allows `backups` of about 200 at that size.
MAX_ARCHIVE_BYTES = 1024 * MiB
#: Members read at most (tar entries of any kind), unless ``backups`` keeps more.
MAX_MEMBERS = 1000


@dataclass
class Archive:
    """The members of the archive that can be used, in order, and why reading stopped or never started.

    ``damage``: what stopped the reading (the members before it are intact);
    ``untrusted``: why the file is not used at all ("is a symbolic link ...");
    ``mode``: the permission bits of the archive file read (None: there is none, or it is not used).
    """

    members: list[Member] = field(default_factory=list)
    damage: str | None = None
    untrusted: str = ""
    mode: int | None = None


def read(folder: Folder, keep: int) -> Archive:
    """The archive in ``folder``: every complete member up to the first damage; none if it is untrusted."""
    try:
        found = folder.read(BACKUP_NAME, MAX_ARCHIVE_BYTES)
    except UntrustedFile as exc:
        return Archive(untrusted=exc.problem.what if exc.problem else str(exc))
    except DamagedFile:
        st = folder.lstat(BACKUP_NAME)
        return Archive(damage=f"it is larger than {MAX_ARCHIVE_BYTES // MiB} MiB after 0 readable version(s)",
                       mode=None if st is None else stat.S_IMODE(st.st_mode))
    if found is None:
        return Archive()
    blob, st = found
    archive = _members(blob, max(keep, MAX_MEMBERS)) if blob else Archive(damage="it is empty")
    archive.mode = stat.S_IMODE(st.st_mode)
    return archive


def _members(blob: bytes, most: int) -> Archive:
    """The members of the tar data ``blob``, read as a stream so that a damaged tail still gives the head."""
    import tarfile

    members: list[Member] = []
    entries = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r|") as tar:
            for member in tar:
                entries += 1
                if entries > most:
                    return Archive(members, f"it holds more than {most} entries, more than backups keeps, "
                                            f"after {len(members)} readable version(s)")
                if not member.isfile():
                    continue
                if member.size > MAX_INVENTORY_BYTES:
                    return Archive(members, f"member {member.name} is larger than any inventory "
                                            f"after {len(members)} readable version(s)")
                data = tar.extractfile(member).read()
                if len(data) != member.size:
                    raise tarfile.ReadError("unexpected end of data")
                members.append((member, data))
    except (tarfile.TarError, OSError, EOFError) as exc:
        return Archive(members, f"{exc or type(exc).__name__} after {len(members)} readable version(s)")
    return Archive(members)


def pack(members: list[Member]) -> bytes:
    """The tar file holding ``members`` (GNU format, as OSA's tools read it)."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def new_member(kept: list[Member], data: bytes, written: float, mode: int) -> Member:
    """The member for the version ``data``, written at ``written``, to follow ``kept``."""
    import tarfile

    info = tarfile.TarInfo(member_name({m.name for m, _ in kept}, written))
    info.size, info.mtime, info.mode = len(data), int(written), mode
    return info, data


def holds_current(archive: Archive, data: bytes, written: float) -> bool:
    """Whether the newest member is the version ``data`` written at ``written`` (the same text, the same second).

    Two versions in a row never have the same text (a write that changes
    nothing stores nothing), so this can only be a version archived by a
    write that was killed or failed before it replaced the inventory.
    """
    if not archive.members:
        return False
    info, kept = archive.members[-1]
    return kept == data and int(info.mtime) == int(written)


def version_of(member_name: str) -> str:
    """The version name ``--history`` shows for an archive member."""
    if member_name.startswith(MEMBER_PREFIX) and member_name.endswith(".json"):
        return member_name[len(MEMBER_PREFIX):-len(".json")]
    return member_name


def member_name(kept: set[str], written: float) -> str:
    """The member name of a version written at ``written``, unique among ``kept``.

    A second version within one second gets ``_02``, ``_03``...; counting on
    from the highest kept suffix (not the lowest free one) keeps name order
    equal to archive order even after pruning dropped the earlier ones.
    """
    base = f"{MEMBER_PREFIX}{stamp_of(written)}"
    highest = 0
    for name in kept:
        if name == base + ".json":
            highest = max(highest, 1)
        elif name.startswith(base + "_") and name.endswith(".json") and name[len(base) + 1:-5].isdigit():
            highest = max(highest, int(name[len(base) + 1:-5]))
    return f"{base}.json" if highest == 0 else f"{base}_{highest + 1:02d}.json"


def stamp_of(written: float) -> str:
    """``YYYYmmdd_HHMMSS`` (UTC) of a file's write time."""
    return _dt.datetime.fromtimestamp(written, _dt.timezone.utc).strftime("%Y%m%d_%H%M%S")
