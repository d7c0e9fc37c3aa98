"""Which files a deployment's config is read from, found without parsing any of them.

The generator (:mod:`osa_inventory.generate.config`) reads these files; a run
that waited for the lock (:func:`config_signature`) and the reuse of an
unchanged run (:mod:`osa_inventory.reuse`) need only their names and bytes,
so this module imports no YAML parser.
"""

from __future__ import annotations

import os

from .bounded import read_file
from .errors import ConfigError

#: Far beyond any deployment config file; larger ones are refused before they are parsed.
MAX_FILE_BYTES = 16 * 1024 * 1024
USER_CONFIG = "openstack_user_config.yml"
YAML_SUFFIXES = (".yml", ".yaml")
#: What the config was read from, in reading order: ``(path, bytes)`` for each file, then the order in
#: which the base env.d lists its files as ``(LISTING, listing_bytes(...))`` (it breaks ties; see
#: generate.config.Skeleton). The reader records it; :mod:`osa_inventory.reuse` digests it.
Inputs = list[tuple[str, bytes]]
LISTING = "listing order of the base env.d"


def _yaml_files(folder: str, listing_order: bool = False) -> list[str]:
    """Every ``*.yml``/``*.yaml`` file under ``folder``, sub-folders included, as OSA walks them.

    A folder's own files come first, then each sub-folder's, depth first:
    the order of a top-down ``os.walk``. Names are sorted at every level, so
    the order is the same on every machine; ``listing_order`` keeps the order
    the filesystem lists them in instead (OSA's order, see :class:`Skeleton`).
    Symlinked folders are not entered (``os.walk`` does not follow them
    either, and a link back up would loop). An unreadable folder or a link to
    a missing file is an error, never skipped.
    """
    if not os.path.isdir(folder):
        return []
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot be read ({exc.strerror}); fix its permissions") from None
    if not listing_order:
        entries.sort(key=lambda e: e.name)
    files, folders = [], []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            folders.append(entry.path)
        elif entry.name.endswith(YAML_SUFFIXES):
            if entry.is_symlink() and not os.path.exists(entry.path):
                raise ConfigError(
                    f"{entry.path} is a link to {os.readlink(entry.path)}, which does not exist; "
                    "fix or remove the link")
            if entry.is_file():
                files.append(entry.path)
    for sub in folders:
        files.extend(_yaml_files(sub, listing_order))
    return files


def config_paths(config_dir: str, environment_dir: str) -> list[str]:
    """Every file the config is read from, in reading order: user config, conf.d, base env.d, the config's env.d."""
    paths = [os.path.join(config_dir, USER_CONFIG)]
    paths += _yaml_files(os.path.join(config_dir, "conf.d"))
    paths += _yaml_files(os.path.join(environment_dir, "env.d")) + _yaml_files(os.path.join(config_dir, "env.d"))
    return paths


def config_signature(config_dir: str, environment_dir: str) -> list[tuple]:
    """Name, size, mtime and inode of every file the config is read from: equal means unchanged.

    Costs only stat calls, so a run that waited for the storage lock can tell whether
    the config changed meanwhile without parsing it again.
    """
    out = []
    for path in config_paths(config_dir, environment_dir):
        try:
            st = os.stat(path)
        except OSError:
            out.append((path, None))
            continue
        out.append((path, st.st_size, st.st_mtime_ns, st.st_ino))
    return out


def listing_bytes(paths: list[str]) -> bytes:
    """The base env.d's listing order as the bytes :data:`Inputs` holds for it."""
    return "\n".join(paths).encode("utf-8", "surrogateescape")


def read_inputs(config_dir: str, environment_dir: str) -> Inputs:
    """What reading the config would read, without parsing it (a file that cannot be read raises ConfigError)."""
    inputs: Inputs = [(path, read_file(path, limit=MAX_FILE_BYTES, error=ConfigError))
                      for path in config_paths(config_dir, environment_dir)]
    base_dir = os.path.join(environment_dir, "env.d")
    if os.path.isdir(base_dir):
        inputs.append((LISTING, listing_bytes(_yaml_files(base_dir, listing_order=True))))
    return inputs
