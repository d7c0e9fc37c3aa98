"""The ``[netbox]`` options: their declaration and the checked values the store works with."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ...errors import StorageError
from ..service_url import service_root
from ...storage.options import Option, closest, declare, read_options
from .. import change_records as records

SLUG = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
OPTIONS = declare(
    Option("url", default="", help="NetBox's address, e.g. https://netbox.example.com (/api is added)"),
    Option("token", default="", secret=True, help="a v2 API token, nbt_<key>.<secret>"),
    Option("verify", "flag", default=True, help="check NetBox's TLS certificate"),
    Option("ca_cert", "path", default="", help="CA bundle that signed NetBox's certificate"),
    Option("timeout", "number", default=300.0, minimum=0.001, help="seconds per request"),
    Option("site", default="", help="slug of the site holding this deployment's devices and clusters"),
    Option("tag", default="osa-inventory", help="slug of the tag marking every object this deployment owns"),
    Option("vrf", default="", help="name of the VRF of the addresses (default: the global table)"),
    Option("cluster_type", default="osa-lxc", help="slug of the cluster type of the per-host clusters"),
    Option("device_role", default="osa-host", help="slug of the role of physical hosts"),
    Option("vm_role", default="osa-container", help="slug of the role of containers"),
    Option("device_type", default="osa-host", help="slug of the device type of new physical hosts"),
    Option("create", "flag", default=True, help="create the site, tag, roles, types and custom field when missing"),
    Option("cache_dir", "path", default="", help="folder of the local cache"),
    Option("cache", "flag", default=True, help="keep the local cache"),
    Option("change_records", "whole", default=records.DEFAULT_KEEP, minimum=1, maximum=records.MAX_KEEP,
           help="change records kept for --history"),
)
TOKEN = re.compile(r"^nbt_[A-Za-z0-9]{1,64}\.[A-Za-z0-9]{1,128}$")


@dataclass
class Options:
    """Checked options; the token is kept out of the repr."""

    url: str
    site: str
    tag: str = "osa-inventory"
    vrf: str = ""
    token: str = field(default="", repr=False)
    verify: bool | str = True
    timeout: float = 300.0
    cluster_type: str = "osa-lxc"
    device_role: str = "osa-host"
    vm_role: str = "osa-container"
    device_type: str = "osa-host"
    create: bool = True
    cache_dir: str = ""
    cache: bool = True
    change_records: int = records.DEFAULT_KEEP


def parse_options(args: dict) -> Options:
    """Check ``register()`` arguments; every message names the option and never the token's value."""
    unknown = sorted(set(args) - set(OPTIONS) - {"config_dir"})
    if unknown:
        raise StorageError(f"unknown option {unknown[0]}{closest(unknown[0], OPTIONS)}; known: "
                           f"{', '.join(sorted(OPTIONS))}")
    config_dir = str(args.get("config_dir") or "")
    values = read_options(OPTIONS, args)
    opts = Options(url=_check_url(values["url"]), site=values["site"])
    opts.token = values["token"]
    if not opts.token:
        raise StorageError("option token is not set; give a NetBox v2 API token (nbt_...), better in "
                           "OSA_INVENTORY_NETBOX_TOKEN than in osa.ini (docs/netbox.md, Set-up)")
    if not TOKEN.match(opts.token):
        raise StorageError("option token is not a NetBox v2 token (nbt_<key>.<secret>, letters and digits); "
                           "copy the whole token NetBox showed when it was made")
    for name in ("site", "tag", "cluster_type", "device_role", "vm_role", "device_type"):
        value = values[name]
        if not value:
            raise StorageError(f"option {name} is not set; give the slug of the NetBox {name.replace('_', ' ')} "
                               "this deployment uses (docs/netbox.md)")
        if not SLUG.match(value):
            raise StorageError(f"option {name} = {value!r} is not a NetBox slug (1 to 100 letters, digits, "
                               "'-' or '_')")
        setattr(opts, name, value)
    ca_cert = values["ca_cert"]
    if ca_cert:
        path = os.path.join(config_dir, os.path.expanduser(ca_cert))
        if not os.path.isfile(path):
            raise StorageError(f"option ca_cert = {ca_cert!r}: no CA bundle at {path}")
        if not values["verify"]:
            raise StorageError("options ca_cert and verify = false contradict each other; drop one")
        opts.verify = path
    else:
        opts.verify = values["verify"]
    opts.vrf = values["vrf"]
    if len(opts.vrf) > 100 or not opts.vrf.isprintable():
        raise StorageError(f"option vrf = {opts.vrf!r} is not a NetBox VRF name (at most 100 printable characters)")
    for name in ("timeout", "create", "cache", "change_records"):
        setattr(opts, name, values[name])
    cache_dir = values["cache_dir"] or config_dir
    if not cache_dir:
        raise StorageError("option cache_dir is not set and no config folder was given")
    opts.cache_dir = os.path.join(config_dir, os.path.expanduser(cache_dir))
    return opts


def _check_url(url: str) -> str:
    return service_root(url, "NetBox's address, e.g. https://netbox.example.com", "option token", "/api")
