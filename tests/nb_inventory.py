"""netbox.netbox's nb_inventory, the inventory plugin most NetBox users run, for a test that reads the
NetBox our plugin wrote (constraints/nb-inventory.txt pins where it comes from).

The collection is unpacked from the pinned ``ansible`` wheel and ``pytz`` (which nb_inventory needs)
from its own wheel, both fetched once with ``pip download --no-deps --require-hashes`` into
``$OSA_NB_INVENTORY_HOME`` (default: beside the test NetBox's cache, or ``~/.cache``), so later runs
work offline. Ansible runs with ``ANSIBLE_COLLECTIONS_PATH`` and ``PYTHONPATH`` pointing there: the
test venv itself is never changed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import zipfile

from helpers import ROOT

LOCK = os.path.join(ROOT, "constraints", "nb-inventory.txt")


class Unavailable(Exception):
    """Why nb_inventory cannot be had (the skip reason)."""


def home() -> str:
    if os.environ.get("OSA_NB_INVENTORY_HOME"):
        return os.environ["OSA_NB_INVENTORY_HOME"]
    if os.geteuid() == 0:
        return "/var/cache/osa-inventory/nb-inventory"
    return os.path.join(os.path.expanduser("~"), ".cache", "osa-inventory", "nb-inventory")


def prepared() -> tuple[str, str]:
    """``(collections path, python path)`` with netbox.netbox and pytz, fetched on first use."""
    with open(LOCK, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()[:12]
    base = os.path.join(home(), digest)
    collections, python = os.path.join(base, "collections"), os.path.join(base, "python")
    done = os.path.join(base, "ready")
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # suites of several Python versions may arrive together
        if os.path.exists(done):
            return collections, python
        wheels = os.path.join(base, "wheels")
        fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
                                  "-q", "-d", wheels, "-r", LOCK], capture_output=True, text=True, timeout=1200)
        if fetched.returncode != 0:
            lines = (fetched.stderr.strip() or fetched.stdout.strip() or "no output").splitlines()
            raise Unavailable(f"cannot fetch nb_inventory ({LOCK}): {lines[-1]}")
        for name in os.listdir(wheels):
            with zipfile.ZipFile(os.path.join(wheels, name)) as wheel:
                if name.startswith("ansible-"):
                    members = [m for m in wheel.namelist() if m.startswith("ansible_collections/netbox/netbox/")]
                    wheel.extractall(collections, members)
                else:
                    wheel.extractall(python)
        open(done, "w").close()
    return collections, python
