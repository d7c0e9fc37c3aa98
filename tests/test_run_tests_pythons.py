"""scripts/run-tests-pythons.py: every supported version is run or named, and the last line adds up."""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from helpers import ROOT

RUNNER = os.path.join(ROOT, "scripts", "run-tests-pythons.py")
# The runner runs on the system's python3 before any venv exists (.ci/run), whichever versions it tests:
# one version's suite tests it.
pytestmark = pytest.mark.once
THIS = f"{sys.version_info[0]}.{sys.version_info[1]}"
_SPEC = importlib.util.spec_from_file_location("run_tests_pythons", RUNNER)
runner = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(runner)


def run_runner(tmp_path, *args: str, pyenv_versions: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The runner in a world of our making (see ``runner_world``), to its end."""
    env = runner_world(tmp_path, pyenv_versions)
    return subprocess.run([sys.executable, RUNNER, *args], capture_output=True, text=True, env=env, timeout=600)


def runner_world(tmp_path, pyenv_versions: dict[str, str] | None) -> dict[str, str]:
    """The environment for a runner that sees a pyenv root holding ``pyenv_versions``
    ({"3.X.Y": interpreter}), nothing else on PATH, and this test's own venv as the venv of
    this Python version (so nothing is installed)."""
    pyenv = tmp_path / "pyenv"
    for name, target in (pyenv_versions or {}).items():
        short = ".".join(name.split(".")[:2])
        folder = pyenv / "versions" / name / "bin"
        folder.mkdir(parents=True)
        os.symlink(target, folder / f"python{short}")
    venvs = tmp_path / "venvs"
    venvs.mkdir()
    if sys.prefix != sys.base_prefix:
        os.symlink(sys.prefix, venvs / f".venv-py{THIS}")
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "PYTEST"))}
    env.update(PYENV_ROOT=str(pyenv), OSA_TEST_VENVS=str(venvs), PATH=f"{empty}:/usr/bin:/bin")
    return env


def _system_has(version: str) -> bool:
    return any(os.path.exists(f"{d}/python{version}") for d in ("/usr/bin", "/usr/local/bin"))


def test_this_version_runs_and_the_last_line_adds_up(tmp_path):
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs to run inside a venv, as scripts/run-tests.sh runs it")
    real = os.path.realpath(sys.executable)
    result = run_runner(tmp_path, "--pythons", THIS, "tests/test_tls_certs.py",
                        "-k", "strict_verification_both_ways", pyenv_versions={f"{THIS}.99": real})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(rf"Python {THIS}: 1 passed, 0 failed, 1 deselected in [\d.]+s", lines[-2]), lines
    assert re.fullmatch(rf"1 passed, 0 failed, 1 deselected in [\d.]+s "
                        rf"\(all of Python {THIS}; tests marked once: {THIS}\)", lines[-1])
    assert f"===== Python {THIS} ({tmp_path}/pyenv/versions/{THIS}.99/bin/python{THIS}), exit status 0" \
        in result.stdout


def test_nothing_collected_is_a_failure(tmp_path):
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs to run inside a venv, as scripts/run-tests.sh runs it")
    real = os.path.realpath(sys.executable)
    result = run_runner(tmp_path, "--pythons", THIS, "tests/test_tls_certs.py", "-k", "no_test_is_named_so",
                        pyenv_versions={f"{THIS}.99": real})
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == f"Python {THIS}: ERROR, no tests were collected"
    assert re.fullmatch(rf"0 passed, 0 failed, 1 error in [\d.]+s "
                        rf"\(NOT all of Python {THIS}; tests marked once: {THIS}\)", lines[-1])


ONCE_PROBE = """
import os

import pytest


@pytest.mark.once
def test_marked_once():
    pass


def test_everywhere():
    print("ONCE_ELSEWHERE=" + os.environ.get("OSA_TEST_ONCE_ELSEWHERE", "-"))
"""


@pytest.mark.parametrize("where, ran, deselected", [("default", 2, 0), ("another version", 1, 1)])
def test_tests_marked_once_run_in_one_versions_suite_only(tmp_path, where, ran, deselected):
    """By default the only version of the run runs them; --once-on another version leaves them to that
    version's suite (deselected here, and counted so)."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs to run inside a venv, as scripts/run-tests.sh runs it")
    probe = os.path.join(ROOT, "tests", f"test_once_probe_{os.getpid()}_{len(str(tmp_path))}.py")
    with open(probe, "w") as fh:  # inside tests/ so that tests/conftest.py applies, as to the real suite
        fh.write(ONCE_PROBE)
    try:
        once_on = next(v for v in runner.SUPPORTED if v != THIS) if where == "another version" else None
        args = ["--once-on", once_on] if once_on else []
        result = run_runner(tmp_path, "--pythons", THIS, *args, probe, "-s",
                            pyenv_versions={f"{THIS}.99": os.path.realpath(sys.executable)})
    finally:
        os.unlink(probe)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    counted = f"{ran} passed, 0 failed" + (f", {deselected} deselected" if deselected else "")
    assert re.fullmatch(rf"{counted} in [\d.]+s \(all of Python {THIS}; tests marked once: {once_on or THIS}\)",
                        lines[-1]), lines[-1]
    assert f"ONCE_ELSEWHERE={once_on or '-'}" in result.stdout


def test_the_version_that_runs_tests_marked_once():
    assert runner.choose_once_on(None, ["3.10", "3.11", "3.12"]) == "3.11"
    assert runner.choose_once_on(None, ["3.12", "3.13"]) == "3.12"
    assert runner.choose_once_on("3.13", ["3.10", "3.11"]) == "3.13"
    assert runner.choose_once_on(None, []) is None


def test_a_stopped_runner_stops_the_tests_it_started(tmp_path):
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs to run inside a venv, as scripts/run-tests.sh runs it")
    pid_file = tmp_path / "pid"
    slow = tmp_path / "test_slow.py"
    slow.write_text("import os, time\n\ndef test_slow():\n"
                    f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n    time.sleep(300)\n")
    env = runner_world(tmp_path, {f"{THIS}.99": os.path.realpath(sys.executable)})
    proc = subprocess.Popen([sys.executable, RUNNER, "--pythons", THIS, str(slow)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        pytest_pid = int(pid_file.read_text())
        proc.terminate()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        for _ in range(100):  # the runner waited for it; allow the kernel a moment to reap
            os.kill(pytest_pid, 0)
            time.sleep(0.05)


@pytest.mark.parametrize("version", runner.SUPPORTED)
def test_a_missing_interpreter_is_named_and_fails_the_run(tmp_path, version):
    if _system_has(version):
        pytest.skip(f"this machine has python{version} in /usr/bin or /usr/local/bin")
    # A pyenv folder whose interpreter is another version: not taken for this one.
    other = "3.10" if version != "3.10" else "3.11"
    impostor = tmp_path / "impostor"
    impostor.write_text(f"#!/bin/sh\necho {other}\n")
    impostor.chmod(0o755)
    result = run_runner(tmp_path, "--pythons", version, pyenv_versions={f"{version}.5": str(impostor)})
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"Python {version}: MISSING, no interpreter in {tmp_path}/pyenv/versions/"
                               f"{version}.5/bin/python{version}")
    assert f"pyenv install {version}" in lines[0]
    assert re.fullmatch(rf"0 passed, 0 failed, 1 error in [\d.]+s "
                        rf"\(NOT all of Python {version}; tests marked once: none\)", lines[-1])


def test_summary_lines_are_read_as_pytest_writes_them():
    assert runner.parse_summary("...\n\n514 passed, 7 skipped in 178.25s (0:02:58)\n") == dict(
        runner.parse_summary("= 0 passed in 1s ="), passed=514, skipped=7)
    counts = runner.parse_summary("== 3 failed, 10 passed, 1 error, 2 warnings in 4.00s ==")
    assert (counts["failed"], counts["passed"], counts["errors"], counts["warnings"]) == (3, 10, 1, 2)
    assert runner.parse_summary("no tests ran in 0.01s") is None
    assert runner.parse_summary("Traceback (most recent call last):\n  ...\nKeyError: 'x'") is None
    assert runner.summary_line(dict(counts, passed=1), 2.5) == "1 passed, 3 failed, 1 error, 2 warnings in 2.50s"


def test_tox_envs_and_the_readme_name_every_supported_version():
    tox = configparser.ConfigParser()
    tox.read(os.path.join(ROOT, "tox.ini"))
    envs = {e.strip() for e in tox["tox"]["envlist"].split(",")}
    assert {f"py{v.replace('.', '')}" for v in runner.SUPPORTED} <= envs
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    named = ", ".join(runner.SUPPORTED[:-1]) + f" and {runner.SUPPORTED[-1]}"
    assert f"Python {named}" in readme
