"""ansible-core's commands as the tests run them, and what of their stderr is ours to judge.

Ansible prints warnings of its own on stderr (ansible-core 2.19 with a newer
``cryptography`` warns that DSA is deprecated when it imports its SSH agent
code), whatever inventory it reads. Tests that demand a silent stderr demand it
of our script and our lines: ``our_stderr`` drops the lines the same Ansible
command prints over an inventory that is not ours (an empty YAML file), so a
warning that only our inventory causes still fails the test.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile

BIN = os.path.dirname(sys.executable)
ANSIBLE_INVENTORY = shutil.which("ansible-inventory", path=BIN) or shutil.which("ansible-inventory")
ANSIBLE = shutil.which("ansible", path=BIN) or shutil.which("ansible")


@functools.cache
def _noise(command: str) -> frozenset[str]:
    """The stderr lines ``command`` prints over an empty inventory of no plugin of ours."""
    with tempfile.TemporaryDirectory(prefix="ansible-noise-") as scratch:
        empty = os.path.join(scratch, "empty.yml")
        with open(empty, "w") as fh:
            fh.write("all: {}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
        env.update(ANSIBLE_HOME=os.path.join(scratch, "home"), ANSIBLE_LOCAL_TEMP=os.path.join(scratch, "tmp"),
                   PATH=BIN + os.pathsep + env.get("PATH", ""))
        args = ["--list"] if os.path.basename(command) == "ansible-inventory" else ["all", "--list-hosts"]
        result = subprocess.run([command, "-i", empty, *args], capture_output=True, text=True, env=env,
                                timeout=300)
    # Only what Ansible says over any inventory; the empty one matches no host, which it may warn about.
    return frozenset(line for line in result.stderr.splitlines() if "host" not in line.lower())


def our_stderr(stderr: str, command: str | None = None) -> str:
    """``stderr`` of an Ansible command without the lines Ansible prints on its own."""
    noise = _noise(command or ANSIBLE_INVENTORY)
    return "\n".join(line for line in stderr.splitlines() if line not in noise).strip()
