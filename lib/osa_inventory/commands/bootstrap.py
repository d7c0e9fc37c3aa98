"""Start an entry point even when the Python running it lacks the requirements.

Ansible and operators start the scripts through their shebang, i.e. with
whatever ``python3`` is on PATH. When that Python cannot import a
requirement, the scripts re-execute under the project's ``.venv`` if there
is one, else say in one line what is missing. Only the standard library may
be imported here.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Callable

# lib/osa_inventory/commands/bootstrap.py: the checkout is four folders up.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def entry_point(module: str, script: str) -> Callable[..., int]:
    """``module.main``, or never returns (re-exec under .venv, or exit 1 with one line)."""
    try:
        return importlib.import_module(module).main
    except ImportError as exc:
        if (exc.name or "").startswith("osa_inventory"):
            raise  # our own code is broken: that is a bug, not a missing requirement
        venv = os.path.join(ROOT, ".venv")
        venv_python = os.path.join(venv, "bin", "python")
        if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
            os.execv(venv_python, [venv_python, os.path.realpath(script)] + sys.argv[1:])
        sys.stderr.write(f"ERROR: {exc.name or exc} is not installed for {sys.executable}; {venv_advice()}\n")
        sys.exit(1)


def venv_advice() -> str:
    """How to get the requirements: a venv, which works where the system Python refuses pip (PEP 668)."""
    venv = os.path.join(ROOT, ".venv")
    return (f"create the project's virtualenv, which the scripts then use by themselves: "
            f"python3 -m venv {venv} && {venv}/bin/pip install -r {os.path.join(ROOT, 'requirements.txt')} "
            "(or install the package into a venv, see README.md 'Deploy host')")
