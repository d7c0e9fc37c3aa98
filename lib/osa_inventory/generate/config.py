"""Read the deployment configuration: user config, conf.d and env.d.

I/O lives here and nowhere else in the generator: the functions below turn a
config folder and an environment folder into plain dicts, and every problem
into one :class:`~osa_inventory.errors.ConfigError` line naming the file.
"""

from __future__ import annotations

import copy
import io
import itertools
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

from ..bounded import read_file
from ..config_files import (LISTING, MAX_FILE_BYTES, USER_CONFIG, YAML_SUFFIXES, Inputs,  # noqa: F401 (kept here)
                            _yaml_files, config_signature, listing_bytes)
from ..errors import ConfigError

try:  # the C parser is several times faster on large configs
    _Base = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeLoader

# Bounds far above any real deployment (a 3000-host config is about 300 KB and 50,000 values)
# that stop a hostile or broken file (50 MB, a YAML alias bomb) in well under a second.
MAX_VALUES = 2_000_000


_MERGE = "tag:yaml.org,2002:merge"


class _NoDuplicateKeys:
    """Refuse duplicate keys, which YAML lets the last one win silently; mixed into a safe loader."""

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)
        # Every key first, as written: a duplicate is refused before any value is built.
        seen: dict = {}
        keys: list | None = []
        for key_node, _value in node.value:
            if key_node.tag == _MERGE:
                keys = None
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:
                keys = None
                continue  # an unhashable key: SafeConstructor reports it
            if first != line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first}); merge the two "
                    "entries into one", key_node.start_mark)
            if keys is not None:
                keys.append(key)
        if keys is None:  # merge keys or an unhashable key: SafeConstructor's own way, which knows them
            return super().construct_mapping(node, deep=deep)
        # What SafeConstructor builds when nothing is merged, without building each key a second time.
        return {key: self.construct_object(value_node, deep=deep) for key, (_key, value_node) in zip(keys, node.value)}


class _Loader(_NoDuplicateKeys, _Base):  # type: ignore[misc,valid-type]
    """The loader of every config file: SafeLoader's results and refusals, over libyaml's parser when
    PyYAML has it (tests/test_config_loading.py holds the two to the same answers), and no duplicate keys."""


def _expanded_size(data: Any, path: str) -> None:
    """Refuse data whose aliases expand it beyond MAX_VALUES values, or that contains itself.

    A value is every scalar, mapping key, mapping and list, counted as often as aliases repeat
    it. Sizes are memoised per object, so shared (aliased) parts are measured once.
    """
    sizes: dict[int, int] = {}
    started: set[int] = set()  # a container met again before its size is known contains itself

    def size(obj: Any) -> int:
        if not isinstance(obj, (dict, list)):
            return 1
        key = id(obj)
        if key in sizes:
            return sizes[key]
        if key in started:
            raise ConfigError(f"{path}: a YAML alias refers to the value that contains it; remove the loop")
        started.add(key)
        total = 1
        for item in itertools.chain.from_iterable(obj.items()) if isinstance(obj, dict) else obj:
            total += size(item)
            if total > MAX_VALUES:
                raise ConfigError(
                    f"{path}: expands to more than {MAX_VALUES:,} values (YAML aliases?); "
                    "no deployment needs that many, check the file")
        sizes[key] = total
        return total

    size(data)


SKELETON_SECTIONS = ("component_skel", "container_skel", "physical_skel")


def merge(base: dict, extra: dict) -> dict:
    """Merge ``extra`` into ``base`` in place and return it.

    A non-empty dict merges recursively; an empty dict replaces (this is how
    an env.d override deletes an entry); lists and scalars replace.
    """
    for key, value in extra.items():
        if isinstance(value, dict) and value and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def read_yaml(path: str, inputs: Inputs | None = None) -> Any:
    """Parse one YAML file; a syntax error names the file and line.

    Only a regular file of at most MAX_FILE_BYTES is read (the project's
    bounded reader): a FIFO, a device or a folder in its place is refused at once.
    The bytes parsed are appended to ``inputs`` when given.
    """
    try:
        data = read_file(path, limit=MAX_FILE_BYTES, error=ConfigError)
        if inputs is not None:
            inputs.append((path, data))
        text = io.BytesIO(data)
        text.name = path  # how YAML's messages name it
        data = yaml.load(text, Loader=_Loader)
        _expanded_size(data, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise ConfigError(f"{where}: YAML syntax error: {exc.problem or exc.context}; fix the file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: cannot be parsed as YAML ({' '.join(str(exc).split())})") from None
    except ValueError as exc:  # a tag the value does not fit: !!int x, !!float y
        raise ConfigError(f"{path}: a value does not fit its YAML tag ({exc}); fix the file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except RecursionError:  # deeper than Python's stack, while parsing or measuring
        raise ConfigError(f"{path}: is nested too deeply to be a deployment config; check the file") from None
    return data


def _mapping(path: str, data: Any) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found a {type(data).__name__}")
    return data


class UserConfig(dict):
    """The merged user config, remembering which file set each top-level key."""

    origins: dict[str, str]


def origin_of(config: dict, key: str) -> str:
    """The file that set top-level ``key`` (the last one, for merged keys), or ``the user config``."""
    return getattr(config, "origins", {}).get(key, "the user config")


def load_user_config(config_dir: str, inputs: Inputs | None = None) -> dict:
    """``openstack_user_config.yml`` with every ``conf.d/**/*.yml|*.yaml`` merged in (order: :func:`_yaml_files`).

    ``inputs``, when given, gets what was read (see :data:`Inputs`).
    """
    path = os.path.join(config_dir, USER_CONFIG)
    if not os.path.exists(path):  # anything else there (a FIFO, a folder) is refused by read_yaml, by what it is
        raise ConfigError(
            f"{path} does not exist; create it (see etc/openstack_deploy/ for examples) "
            "or point --config at the folder that holds it")
    config = UserConfig(_mapping(path, read_yaml(path, inputs)))
    config.origins = {key: path for key in config if isinstance(key, str)}
    for extra in _yaml_files(os.path.join(config_dir, "conf.d")):
        data = _mapping(extra, read_yaml(extra, inputs))
        merge(config, data)
        config.origins.update((key, extra) for key in data if isinstance(key, str))
    return config


@dataclass
class Skeleton:
    """The merged environment skeleton.

    ``container_order`` is the order container types are processed in. Values
    are merged in sorted file-name order (deterministic); processing follows
    the order in which the base folder lists its files, as OpenStack-Ansible
    does, so that a host running several bare-metal services gets the same
    ``component``/``physical_host_group`` as OSA would give it. Only that
    tie-break depends on it, and a stored choice is kept (see containers.py).
    """

    component_skel: dict = field(default_factory=dict)
    container_skel: dict = field(default_factory=dict)
    physical_skel: dict = field(default_factory=dict)
    container_order: list[str] = field(default_factory=list)


def _read_skeleton_files(paths: Iterable[str], inputs: Inputs | None) -> list[tuple[str, dict]]:
    out = []
    for path in paths:
        data = _mapping(path, read_yaml(path, inputs))
        for section in SKELETON_SECTIONS:
            value = data.get(section)
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{path}: {section} must be a mapping, found a {type(value).__name__}")
        out.append((path, data))
    return out


def load_skeleton(environment_dir: str, config_dir: str, inputs: Inputs | None = None) -> Skeleton:
    """Base ``<environment_dir>/env.d`` with ``<config_dir>/env.d`` merged on top.

    Both folders are read with their sub-folders, as OSA reads them (order: :func:`_yaml_files`).
    ``inputs``, when given, gets what was read (see :data:`Inputs`).
    """
    base_dir = os.path.join(environment_dir, "env.d")
    if not os.path.isdir(base_dir):
        raise ConfigError(
            f"{base_dir} does not exist; --environment must name the folder that contains env.d/")
    base = _read_skeleton_files(_yaml_files(base_dir), inputs)
    overrides = _read_skeleton_files(_yaml_files(os.path.join(config_dir, "env.d")), inputs)
    skel = Skeleton()
    merged: dict = {s: {} for s in SKELETON_SECTIONS}
    for _path, data in base + overrides:
        merge(merged, {s: data[s] for s in SKELETON_SECTIONS if data.get(s)})
    skel.component_skel = merged["component_skel"]
    skel.container_skel = merged["container_skel"]
    skel.physical_skel = merged["physical_skel"]

    by_path = dict(base)
    listing = _yaml_files(base_dir, listing_order=True)
    if inputs is not None:
        inputs.append((LISTING, listing_bytes(listing)))
    listed = [by_path[path] for path in listing]
    order = [key for data in listed + [data for _path, data in overrides]
             for key in data.get("container_skel") or {}]
    skel.container_order = [k for k in dict.fromkeys(order) if isinstance(skel.container_skel.get(k), dict)]
    return skel
