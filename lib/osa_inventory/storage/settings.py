"""osa.ini: which storage backend to use and the options of each backend.

The file is ``$OSA_INI`` when that is set, else ``/etc/ansible/osa.ini``.
A missing default file simply means defaults (the filesystem backend); a
missing file that ``$OSA_INI`` names is an error, because the deployer asked
for it explicitly. The file (or, when it is missing, the folders above where it
would be) must pass :func:`.trust.check_settings_file` first: it names the
code to run and where the passwords go, so only root or the running user may
have been able to write it.

Environment variables override the file, so secrets never have to be
written to disk:

* ``OSA_INVENTORY_BACKEND``: the section (backend) to use;
* ``OSA_INVENTORY_PLUGIN_PATHS``: plugin folders, searched before the ones
  in the file;
* ``OSA_INVENTORY_TIMEOUT``: seconds any one step of plugin code may take;
* ``OSA_INVENTORY_<OPTION>``: any other option of ``[inventory]``;
* ``OSA_INVENTORY_<SECTION>_<OPTION>``: any option of any section, e.g.
  ``OSA_INVENTORY_CRATON_API_KEY``.

``[inventory]``'s own options are declared once, in :data:`INVENTORY_OPTIONS`
(add an :class:`~.declare.Option` there to add one); unknown ones are refused.
Relative paths written in the file are relative to the file's folder.
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Mapping

from ..bounded import MiB, read_file
from ..errors import SettingsError
from .options import (FALSE_WORDS, PATH_KINDS, RESERVED, TRUE_WORDS, Declaration, Option, advice, closest,
                      convert, declare, shown)
from .trust import check_settings_file
from .watchdog import DEFAULT_TIMEOUT, MAX_TIMEOUT

LOG = logging.getLogger(__name__)

DEFAULT_INI = "/etc/ansible/osa.ini"
#: Far beyond any osa.ini (a few hundred bytes per backend).
MAX_INI_BYTES = MiB
DEFAULT_BACKEND = "filesystem"
MAIN_SECTION = "inventory"
ENV_PREFIX = "OSA_INVENTORY_"
SECRET_WORDS = ("password", "token", "api_key", "secret")

INVENTORY_OPTIONS: Declaration = declare(
    Option("backend", default=DEFAULT_BACKEND,
           help="the section (storage backend) that stores the inventory"),
    Option("plugin_paths", "paths", default="",
           help="folders searched for storage plugins before the built-in lib/plugins/"),
    Option("timeout", "number", default=DEFAULT_TIMEOUT, minimum=0, above_minimum=True, maximum=MAX_TIMEOUT,
           help="seconds any one step of plugin code may take"),
    Option("unknown_host_groups", "choice", default="error", choices=("error", "warn"),
           help="a *_hosts key of the user config one typo from a host group env.d knows: refuse it, or warn"),
)
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
    inventory: dict[str, object] = field(default_factory=dict)
    plugin_path_sources: dict[str, str] = field(default_factory=dict)  # folder: where it was listed

    def _env_options(self, section: str) -> dict[str, str]:
        """``option: variable`` for the environment variables that set options of ``section``."""
        prefix = env_key(section) + "_"
        # OSA_INVENTORY_ETCD_PROD_PASSWORD belongs to [etcd_prod], not to [etcd] as prod_password.
        longer = [env_key(other) + "_" for other in self.known_sections()
                  if other != section and env_key(other).startswith(prefix.rstrip("_"))
                  and len(env_key(other)) > len(prefix) - 1]
        found = {}
        for key in self.environ:
            if key.startswith(prefix) and len(key) > len(prefix) and not any(
                    key.startswith(other) for other in longer):
                found[key[len(prefix):].lower()] = key
        return found

    def known_sections(self) -> set[str]:
        """The sections osa.ini defines, plus the configured backend."""
        return set(self.sections) | {self.backend}

    def options(self, section: str) -> dict[str, str]:
        """The options of ``section``: the file's, overridden by the environment."""
        opts = dict(self.sections.get(section, {}))
        for option, key in self._env_options(section).items():
            opts[option] = self.environ[key]
        return opts

    def source(self, section: str, option: str) -> str:
        """Where ``[section] option`` comes from: its environment variable, or the file."""
        variable = self._env_options(section).get(option)
        if variable:
            return f"environment variable {variable}"
        return f"{self.describe()}: [{section}] {option}"

    def checked_options(self, section: str, declared: Declaration) -> dict[str, str]:
        """The section's options checked against a plugin's declaration, file paths made absolute.

        Raises SettingsError naming the option, where it came from and what to do.
        """
        opts = self.options(section)
        from_env = self._env_options(section)
        for name, raw in opts.items():
            option = declared.get(name)
            where = self.source(section, name)
            if option is None and name not in RESERVED:
                raise SettingsError(
                    f"{where}: unknown option of [{section}]{closest(name, declared)}; "
                    f"known: {', '.join(sorted(declared)) or 'none'}")
            if option is not None:
                try:
                    convert(option, raw)
                except ValueError as exc:
                    raise SettingsError(f"{where} = {shown(option, raw)} {exc}; {advice(option)}") from None
            kind = option.kind if option is not None else ("path" if name == "config_dir" else "")
            if kind in PATH_KINDS and name not in from_env:
                opts[name] = self.resolve_paths(raw, kind)
        return opts

    def resolve_paths(self, raw: str, kind: str = "path") -> str:
        """Relative paths written in osa.ini, made relative to the file's folder."""
        if not self.path or kind == "flag_or_path" and raw.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return raw
        base = os.path.dirname(os.path.abspath(self.path))
        parts = split_paths(raw) if kind == "paths" else [raw.strip()]
        resolved = [os.path.join(base, os.path.expanduser(p)) if p else p for p in parts]
        return ",".join(resolved)

    def plugin_for(self, section: str) -> str:
        """The plugin module that serves ``section`` (its ``plugin`` option, else its name)."""
        name = self.options(section).get("plugin", section).strip()
        if not _PLAIN_NAME.match(name):
            where = self.source(section, "plugin") if name != section else "the backend name"
            raise SettingsError(
                f"{where} {name!r} is not a plain module name; "
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
    check_settings_file(path)  # who could have written it, before anything in it is believed (see .trust)
    parser = configparser.ConfigParser(interpolation=None, default_section="__no_defaults__")
    if os.path.exists(path):
        try:
            # Bounded: a FIFO, a device or a folder named by OSA_INI is refused at once, never waited on.
            parser.read_string(read_file(path, limit=MAX_INI_BYTES, error=SettingsError).decode("utf-8"), path)
        except (configparser.Error, UnicodeDecodeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise SettingsError(f"{path}: cannot be parsed ({first}); fix the file's INI syntax") from None
        except OSError as exc:
            raise SettingsError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    elif explicit:
        raise SettingsError(f"OSA_INI names {path}, which does not exist; create it or unset OSA_INI")
    else:
        path = None

    sections = {s: dict(parser.items(s)) for s in parser.sections()}
    settings = Settings(path=path, sections=sections, environ=environ)
    settings.inventory = _inventory_options(settings)
    settings.backend = str(settings.inventory["backend"]).strip()
    settings.timeout = float(settings.inventory["timeout"])
    if not _PLAIN_NAME.match(settings.backend):
        raise SettingsError(
            f"{inventory_source(settings, 'backend')}: backend {settings.backend!r} is not a plain module "
            "name; use letters, digits and underscores only (e.g. 'filesystem')")
    settings.plugin_paths = _plugin_paths(settings)
    if path:
        _warn_if_secrets_exposed(path, parser)
    return settings


def inventory_source(settings: Settings, option: str) -> str:
    """Where ``[inventory] option`` comes from: its environment variable, or the file."""
    if settings.environ.get(env_key(option)):
        return f"environment variable {env_key(option)}"
    return f"{settings.describe()}: [{MAIN_SECTION}] {option}"


def _inventory_options(settings: Settings) -> dict[str, object]:
    """[inventory]'s options, typed, the environment (OSA_INVENTORY_<OPTION>) first."""
    main = settings.sections.get(MAIN_SECTION, {})
    for name in main:
        if name not in INVENTORY_OPTIONS:
            raise SettingsError(
                f"{settings.describe()}: unknown option [{MAIN_SECTION}] {name}"
                f"{closest(name, INVENTORY_OPTIONS)}; known: {', '.join(sorted(INVENTORY_OPTIONS))}")
    values: dict[str, object] = {}
    for name, option in INVENTORY_OPTIONS.items():
        raw = settings.environ.get(env_key(name)) or main.get(name, "")
        try:
            values[name] = convert(option, raw)
        except ValueError as exc:
            raise SettingsError(
                f"{inventory_source(settings, name)} = {shown(option, raw)} {exc}; {advice(option)}") from None
    return values


def _plugin_paths(settings: Settings) -> list[str]:
    """Plugin folders, the environment's first (the loader refuses missing ones, after its trust checks)."""
    env_var = env_key("plugin_paths")
    main = settings.sections.get(MAIN_SECTION, {})
    found = []
    for where, raw in ((f"environment variable {env_var}", settings.environ.get(env_var, "")),
                       (f"{settings.describe()}: [{MAIN_SECTION}] plugin_paths",
                        settings.resolve_paths(main.get("plugin_paths", ""), "paths"))):
        for folder in split_paths(raw):
            folder = os.path.abspath(os.path.expanduser(folder))
            settings.plugin_path_sources.setdefault(folder, where)
            found.append(folder)
    return found


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
