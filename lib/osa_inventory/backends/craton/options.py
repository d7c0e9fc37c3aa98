"""The Craton backend's options, checked: where the API is, who we are, and how requests behave.

The declaration (``OPTIONS``) stays in lib/plugins/craton.py; :func:`parse_options`
checks ``register()``'s arguments against it into an :class:`Options`, whose repr
never shows a secret.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from ...errors import StorageError
from ..service_url import service_root
from ...storage.options import Declaration, closest, read_options
from .. import change_records as records

UUID_RE = re.compile(r"^(?:[0-9a-fA-F]{32}"
                     r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")


@dataclass
class Options:
    """Checked plugin options; the secrets are kept out of the repr."""

    url: str
    cloud: str
    region: str
    project_id: str = ""
    username: str = ""
    api_key: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    verify: bool | str = True
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    cache_dir: str = ""
    cache: bool = True
    create: bool = True
    change_records: int = records.DEFAULT_KEEP

    @property
    def who(self) -> str:
        return "the Keystone token" if self.token else f"user {self.username} in project {self.project_id}"

    def headers(self) -> dict[str, str]:
        if self.token:
            return {"X-Auth-Token": self.token}
        return {"X-Auth-Project": self.project_id, "X-Auth-User": self.username, "X-Auth-Token": self.api_key}

    @property
    def where(self) -> str:
        """The region as messages name it (never a secret)."""
        return f"craton {self.url} cloud {self.cloud} region {self.region}"


def parse_options(args: dict, declared: Declaration) -> Options:
    """Check ``register()`` arguments against ``declared``; messages name the option, never a secret's value."""
    unknown = sorted(set(args) - set(declared) - {"config_dir"})
    if unknown:
        raise StorageError(f"unknown option {unknown[0]}{closest(unknown[0], declared)}; known: "
                           f"{', '.join(sorted(declared))}")
    config_dir = str(args.get("config_dir") or "")
    values = read_options(declared, args)

    def text(name: str) -> str:
        return values[name]

    url = _check_url(text("url"))
    cloud, region = text("cloud"), text("region")
    for name, value in (("cloud", cloud), ("region", region)):
        if not value or len(value) > 255:
            raise StorageError(f"option {name} must name the Craton {name} (1 to 255 characters)")
    opts = Options(url=url, cloud=cloud, region=region)
    opts.token, opts.api_key = text("token"), text("api_key")
    opts.project_id, opts.username = text("project_id"), text("username")
    for name in ("token", "api_key"):
        value = getattr(opts, name)
        if value and not all(33 <= ord(c) < 127 for c in value):
            raise StorageError(f"option {name} holds spaces or characters an HTTP header cannot carry; "
                               "check its value")
    if opts.token and opts.api_key:
        raise StorageError("options api_key and token are both set; use api_key (local auth, with "
                           "project_id and username) or token (Keystone), not both")
    if not opts.token:
        if not opts.api_key:
            raise StorageError("no credentials: set api_key (with project_id and username) or token")
        if not opts.username:
            raise StorageError("option username is not set; Craton local auth needs it with api_key")
        if not UUID_RE.match(opts.project_id):
            raise StorageError(f"option project_id = {opts.project_id!r} is not a project UUID "
                               "(32 hex digits, dashes allowed)")
    opts.verify = _verify(values["verify"], config_dir)
    for name in ("timeout", "retries", "backoff", "cache", "create", "change_records"):
        setattr(opts, name, values[name])
    cache_dir = text("cache_dir") or config_dir
    if not cache_dir:
        raise StorageError("option cache_dir is not set and no config folder was given")
    opts.cache_dir = os.path.join(config_dir, os.path.expanduser(cache_dir))
    return opts


def _check_url(url: str) -> str:
    return service_root(url, "the Craton API root, e.g. http://craton.example.com:7780", "api_key or token", "/v1")


def _verify(raw: bool | str, config_dir: str) -> bool | str:
    if isinstance(raw, bool):
        return raw
    path = os.path.join(config_dir, os.path.expanduser(raw))
    if not os.path.exists(path):
        raise StorageError(f"option verify = {raw!r}: no CA bundle at {path}; give true, false or an existing path")
    return path


def uuid_key(value: Any) -> str:
    """A project id in one spelling (no dashes, lower case) for comparisons; '' when absent."""
    return str(value or "").replace("-", "").lower()

