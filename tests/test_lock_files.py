"""The lock files: every supported Python has one, they pin every test requirement, and the tests run with them."""

from __future__ import annotations

import configparser
import importlib.metadata
import importlib.util
import os
import re
import sys

import pytest

from helpers import ROOT

_SPEC = importlib.util.spec_from_file_location("lock_test_requirements",
                                               os.path.join(ROOT, "scripts", "lock-test-requirements.py"))
lock = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(lock)
THIS = f"{sys.version_info[0]}.{sys.version_info[1]}"


def requirement_names(path: str) -> set[str]:
    """Distribution names a requirements file asks for, following its -r includes."""
    names = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if line.startswith("-r"):
                names |= requirement_names(os.path.join(os.path.dirname(path), line[2:].strip()))
            elif line:
                names.add(lock.canonical(re.match(r"[A-Za-z0-9._-]+", line).group(0)))
    return names


@pytest.mark.parametrize("version", lock.pythons.SUPPORTED)
def test_every_supported_python_pins_every_requirement_exactly(version):
    path = lock.lock_path(version)
    assert os.path.isfile(path), f"no lock file for Python {version}: run scripts/lock-test-requirements.py"
    with open(path, encoding="utf-8") as fh:
        entries = [line.strip() for line in fh if line.strip() and not line.startswith("#")]
    assert entries and all(re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", e) for e in entries), entries
    pins = lock.read_pins(path)
    wanted = set().union(*(requirement_names(os.path.join(ROOT, name)) for name in lock.INPUTS))
    assert wanted <= set(pins), f"not locked for {version}: {sorted(wanted - set(pins))}"


def test_this_run_installed_exactly_the_locked_versions():
    constraint = os.environ.get("PIP_CONSTRAINT", "")
    if os.path.realpath(constraint) != os.path.realpath(lock.lock_path(THIS)):
        pytest.skip("not started by scripts/run-tests.sh or tox with this Python's lock file")
    pins = lock.read_pins(lock.lock_path(THIS))
    installed = {lock.canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    for name in requirement_names(os.path.join(ROOT, "test-requirements.txt")):
        assert installed.get(name) == pins[name], (name, installed.get(name), pins[name])


def test_tox_installs_from_the_lock_file_of_each_env():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(os.path.join(ROOT, "tox.ini"))
    pinned = "-c{toxinidir}/constraints/py{py_dot_ver}.txt"
    for section in ("testenv", "testenv:lint", "testenv:mutation"):
        assert pinned in tox[section]["deps"].split(), section
    assert "PIP_CONSTRAINT = {toxinidir}/constraints/py{py_dot_ver}.txt" in tox["testenv"]["setenv"]


def test_the_lock_text_reads_back_as_written(tmp_path):
    pins = {"PyYAML": "6.0.4", "ansible-core": "2.19.15", "typing_extensions": "4.16.0"}
    path = tmp_path / "py3.99.txt"
    path.write_text(lock.render("3.99", pins))
    assert lock.read_pins(str(path)) == {"pyyaml": "6.0.4", "ansible-core": "2.19.15", "typing-extensions": "4.16.0"}
    names = [line.split("==")[0] for line in path.read_text().splitlines() if "==" in line]
    assert names == ["ansible-core", "PyYAML", "typing_extensions"]  # sorted as pip spells them, case aside
