"""osa.ini: which storage backend to use and the options of each backend.

The file is ``$OSA_INI`` when that is set, else ``/etc/ansible/osa.ini``.
A missing default file simply means defaults (the filesystem backend); a
missing file that ``$OSA_INI`` names is an error, because the deployer asked
for it explicitly.

Environment variables override the file, so secrets never have to be
written to disk:

* ``OSA_INVENTORY_BACKEND``: the section (backend) to use;
* ``OSA_INVENTORY_PLUGIN_PATHS``: plugin folders, searched before the ones
  in the file;
* ``OSA_INVENTORY_TIMEOUT``: seconds any one step of plugin code may take;
* ``OSA_INVENTORY_<SECTION>_<OPTION>``: any option of any section, e.g.
  ``OSA_INVENTORY_CRATON_API_KEY``.
"""

from __future__ import annotations

import configparser
import logging
import math
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Mapping

from ..errors import SettingsError
from .watchdog import DEFAULT_TIMEOUT, MAX_TIMEOUT

LOG = logging.getLogger(__name__)

DEFAULT_INI = "/etc/ansible/osa.ini"
DEFAULT_BACKEND = "filesystem"
MAIN_SECTION = "inventory"
ENV_PREFIX = "OSA_INVENTORY_"
SECRET_WORDS = ("password", "token", "api_key", "secret")
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def split_paths(value: str) -> list[str]:
    """Folders separated by commas or new lines, blanks dropped."""
    return [p.strip() for p in re.split(r"[,\n]", value or "") if p.strip()]


def env_key(section: str, option: str = "") -> str:
    """The environment variable that overrides ``option`` of ``section``."""
    name = f"{ENV_PREFIX}{section}_{option}" if option else f"{ENV_PREFIX}{section}"
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper().rstrip("_")


@dataclass
class Settings:
    """What osa.ini and the environment say about storage."""

    path: str | None
    backend: str = DEFAULT_BACKEND
    plugin_paths: list[str] = field(default_factory=list)
    timeout: float = DEFAULT_TIMEOUT
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)

    def options(self, section: str) -> dict[str, str]:
        """The options of ``section``: the file's, overridden by the environment."""
        opts = dict(self.sections.get(section, {}))
        prefix = env_key(section) + "_"
        for key, value in self.environ.items():
            if key.startswith(prefix) and len(key) > len(prefix):
                opts[key[len(prefix):].lower()] = value
        return opts

    def plugin_for(self, section: str) -> str:
        """The plugin module that serves ``section`` (its ``plugin`` option, else its name)."""
        name = self.options(section).get("plugin", section).strip()
        if not _PLAIN_NAME.match(name):
            where = f"[{section}] plugin" if name != section else "the backend name"
            raise SettingsError(
                f"{self.describe()}: {where} {name!r} is not a plain module name; "
                "use letters, digits and underscores only (e.g. 'filesystem')")
        return name

    def describe(self) -> str:
        return self.path or "osa.ini defaults"

    def where_to_set(self) -> str:
        """Where a deployer sets an ``[inventory]`` option: this file, or the default one."""
        return self.path or DEFAULT_INI


def read_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read osa.ini (see the module doc) and the OSA_INVENTORY_* variables."""
    environ = dict(os.environ if environ is None else environ)
    explicit = environ.get("OSA_INI")
    path = explicit or DEFAULT_INI
    parser = configparser.ConfigParser(interpolation=None, default_section="__no_defaults__")
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except (configparser.Error, UnicodeDecodeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise SettingsError(f"{path}: cannot be parsed ({first}); fix the file's INI syntax") from None
        except OSError as exc:
            raise SettingsError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
        _warn_if_secrets_exposed(path, parser)
    elif explicit:
        raise SettingsError(f"OSA_INI names {path}, which does not exist; create it or unset OSA_INI")
    else:
        path = None

    sections = {s: dict(parser.items(s)) for s in parser.sections()}
    main = sections.get(MAIN_SECTION, {})
    backend = (environ.get(env_key("backend")) or main.get("backend") or DEFAULT_BACKEND).strip()
    paths = split_paths(environ.get(env_key("plugin_paths"), "")) + split_paths(main.get("plugin_paths", ""))
    settings = Settings(path=path, backend=backend, plugin_paths=paths, sections=sections, environ=environ)
    settings.timeout = _timeout(settings, environ.get(env_key("timeout")), main.get("timeout"))
    if not _PLAIN_NAME.match(backend):
        raise SettingsError(
            f"{settings.describe()}: backend {backend!r} is not a plain module name; "
            "use letters, digits and underscores only (e.g. 'filesystem')")
    return settings


def _timeout(settings: Settings, from_env: str | None, from_file: str | None) -> float:
    """``[inventory] timeout`` (or OSA_INVENTORY_TIMEOUT): seconds in (0, MAX_TIMEOUT]."""
    raw = (from_env if from_env is not None else from_file or "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT:  # also refuses NaN
        where = env_key("timeout") if from_env is not None else f"{settings.describe()}: [inventory] timeout"
        raise SettingsError(
            f"{where} = {raw!r} is not a number of seconds above 0 and at most {MAX_TIMEOUT:g}; "
            f"set it to e.g. {DEFAULT_TIMEOUT:g}")
    return value


def _warn_if_secrets_exposed(path: str, parser: configparser.ConfigParser) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not mode & stat.S_IROTH:
        return
    for section in parser.sections():
        for option in parser.options(section):
            if any(word in option.lower() for word in SECRET_WORDS):
                LOG.warning("%s holds [%s] %s and is readable by every user; "
                            "chmod o-r %s or move the secret to %s",
                            path, section, option, path, env_key(section, option))
                return
