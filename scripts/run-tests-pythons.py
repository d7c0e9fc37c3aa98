#!/usr/bin/env python3
"""Run the whole test suite on every supported Python version, side by side.

    scripts/run-tests-pythons.py [--pythons 3.12,3.13] [--jobs N] [--once-on 3.X] [pytest arguments]

Each version gets its own venv (.venv-py3.X in the project folder, or in
$OSA_TEST_VENVS when set; made and filled by scripts/run-tests.sh) and its
own pytest process; the suite's tests use temporary folders and free ports,
so versions can run side by side. Each
version's output is printed whole when it finishes, then one line per version, then a last line adding them
up in pytest's words: "N passed, N failed, ... in S s". A version whose
interpreter is missing, or whose run collected nothing or printed no summary,
counts as an error: it is named, never skipped silently. Exit status 0 only
when every version ran and passed.

Tests marked ``once`` (their subject is not the Python version: the NetBox
server's API, scale and fault loops whose small twins run everywhere) run in
one version's suite each. By default they are spread over the versions of the
run (tests/conftest.py gives each one a version by its name), except those that
run commands as another OS user, which stay on 3.11 (the system's interpreter,
which another user can run) or the first version found. --once-on 3.X puts them
all on that version; the other suites deselect them (pytest counts them as
"deselected"). Naming a version this run does not include leaves them to
another run (versions split over machines).

Interpreters are looked for as pyenv installs them ($PYENV_ROOT/versions/3.X.*,
newest patch first), then as python3.X on PATH, /usr/local/bin and /usr/bin;
the first one that reports the right version and can make a venv is used.
Only the standard library is used here: this runs before any venv exists.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
# The version whose suite runs the tests marked ``once`` by default: the one whose tests that run
# commands as another user can run on the CI machine (its interpreter is the system's).
ONCE_DEFAULT = "3.11"
# tests/conftest.py deselects the tests marked ``once`` when this names another version.
ONCE_ELSEWHERE = "OSA_TEST_ONCE_ELSEWHERE"
# The versions of this run, when the tests marked ``once`` are spread over them (tests/conftest.py gives each
# such test one of them; those that run commands as another user stay on the --once-on version).
ONCE_SPREAD = "OSA_TEST_ONCE_SPREAD"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The counts pytest's summary line may carry, in the order it prints them.
COUNTS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed", "deselected", "warnings")
_SUMMARY = re.compile(r"^=*\s*((?:\d+ \w+(?:, )?)+) in ([\d.]+)s\b")


def candidates(version: str) -> list[str]:
    """Where an interpreter for ``version`` ("3.X") may be, most specific first."""
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    installs = glob.glob(os.path.join(pyenv, "versions", f"{version}.*", "bin", f"python{version}"))
    installs.sort(key=lambda path: _patch(path, version), reverse=True)
    found = [shutil.which(f"python{version}"), f"/usr/local/bin/python{version}", f"/usr/bin/python{version}"]
    seen: list[str] = []
    for path in installs + found:
        if path and path not in seen:
            seen.append(path)
    return seen


def _patch(path: str, version: str) -> int:
    match = re.search(re.escape(version) + r"\.(\d+)", path)
    return int(match.group(1)) if match else -1


def find_python(version: str) -> str | None:
    """The first candidate that is ``version`` and can create a venv with pip, else None."""
    probe = ("import sys, venv, ensurepip; "
             "print('%d.%d' % sys.version_info[:2])")
    for path in candidates(version):
        if not os.access(path, os.X_OK):
            continue
        try:
            out = subprocess.run([path, "-c", probe], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return path
    return None


def parse_summary(log: str) -> dict[str, int] | None:
    """The counts of pytest's final summary line in ``log``, or None when there is none."""
    for line in reversed(log.strip().splitlines()):
        match = _SUMMARY.match(line.strip())
        if match:
            counts = dict.fromkeys(COUNTS, 0)
            for number, word in re.findall(r"(\d+) (\w+)", match.group(1)):
                word = {"error": "errors", "warning": "warnings"}.get(word, word)
                if word in counts:
                    counts[word] += int(number)
            return counts
    return None


def summary_line(counts: dict[str, int], seconds: float) -> str:
    """pytest's wording; passed and failed always, the other counts when not zero."""
    parts = [f"{counts[word]} {word[:-1] if counts[word] == 1 and word in ('errors', 'warnings') else word}"
             for word in COUNTS if word in ("passed", "failed") or counts.get(word)]
    return f"{', '.join(parts)} in {seconds:.2f}s"


class Run:
    """The suite on one Python version, in its own process group."""

    def __init__(self, version: str, python: str, pytest_args: list[str], logs: str, once_on: str | None,
                 spread: list[str] | None = None):
        self.version = version
        self.python = python
        self.log_path = os.path.join(logs, f"py{version}.log")
        venvs = os.environ.get("OSA_TEST_VENVS") or ROOT
        # Each version's pytest gets its own temporary root: sessions sharing
        # /tmp/pytest-of-USER trip over each other's clean-up.
        temp_root = os.path.join(logs, f"tmp-py{version}")
        os.mkdir(temp_root)
        env = dict(os.environ, OSA_TEST_PYTHON=python, OSA_TEST_VENV=os.path.join(venvs, f".venv-py{version}"),
                   PYTEST_DEBUG_TEMPROOT=temp_root)
        env.pop(ONCE_ELSEWHERE, None)
        env.pop(ONCE_SPREAD, None)
        if once_on and once_on != version:
            env[ONCE_ELSEWHERE] = once_on
        if spread:
            env[ONCE_SPREAD] = ",".join(spread)
        self._log = open(self.log_path, "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([os.path.join(ROOT, "scripts", "run-tests.sh"), *pytest_args],
                                     cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.seconds = 0.0

    def done(self) -> bool:
        if self.proc.poll() is None:
            return False
        self.seconds = time.monotonic() - self.started
        self._log.close()
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own group: pytest and what it started
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def output(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--pythons", default=",".join(SUPPORTED),
                        help=f"comma-separated versions to test (default {','.join(SUPPORTED)})")
    # All at once by default: on 2 cores that finished four versions sooner than two at a
    # time (the tests wait on subprocesses and servers a good part of the time).
    parser.add_argument("--jobs", type=int, default=len(SUPPORTED),
                        help=f"versions run at the same time (default {len(SUPPORTED)})")
    parser.add_argument("--once-on", metavar="3.X", default=None,
                        help=f"the version whose suite runs the tests marked 'once' (default {ONCE_DEFAULT} "
                             "when in the run, else the first version found)")
    opts, pytest_args = parser.parse_known_args(argv)
    versions = [v.strip() for v in opts.pythons.split(",") if v.strip()]
    unknown = [v for v in versions if v not in SUPPORTED]
    if unknown or not versions or opts.jobs < 1 or opts.once_on not in (None, *SUPPORTED):
        parser.error(f"--pythons and --once-on take some of {','.join(SUPPORTED)} and --jobs a number >= 1")
    # SIGTERM (a CI timeout) stops the runs too, through the cleanup below.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    totals = dict.fromkeys(COUNTS, 0)
    lines: list[str] = []
    waiting: list[tuple[str, str]] = []
    for version in versions:
        python = find_python(version)
        if python is None:
            totals["errors"] += 1
            lines.append(f"Python {version}: MISSING, no interpreter in {', '.join(candidates(version))}; "
                         f"install it (e.g. pyenv install {version}) or leave it out with --pythons")
        else:
            waiting.append((version, python))
    once_on = choose_once_on(opts.once_on, [version for version, _ in waiting])
    # Spread over every version of the run unless --once-on names one: on 2 cores, one suite carrying
    # every such test finished minutes after the others.
    spread = sorted(version for version, _ in waiting) if opts.once_on is None and len(waiting) > 1 else None
    running: list[Run] = []
    # Logs and the tests' temporary files live only as long as this run: several
    # runners (a test of this one among them) may work in one checkout at once.
    scratch = tempfile.mkdtemp(prefix="osa-test-runs-")
    try:
        while waiting or running:
            while waiting and len(running) < opts.jobs:
                running.append(Run(*waiting.pop(0), pytest_args, scratch, once_on, spread))
            for run in [r for r in running if r.done()]:
                running.remove(run)
                lines.append(report(run, totals))
            time.sleep(0.2)
    except BaseException:
        for run in running:
            run.stop()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for line in lines:
        print(line)
    ok = not (totals["failed"] or totals["errors"])
    print(f"{summary_line(totals, time.monotonic() - started)} "
          f"({'all' if ok else 'NOT all'} of Python {', '.join(versions)}; tests marked once: "
          f"{once_place(once_on, spread, os.environ.get('OSA_TEST_NETBOX_HEAVY'))})",
          flush=True)
    return 0 if ok else 1


def once_place(once_on: str | None, spread: list[str] | None, heavy: str | None = None) -> str:
    """Where the tests marked ``once`` ran, for the closing line; ``heavy``: OSA_TEST_NETBOX_HEAVY's value."""
    if spread:
        # tests/conftest.py leaves out the suite that runs the heavy NetBox tests (tests/netbox_heavy.py):
        # the version the variable names, or, unset, the --once-on version's.
        suite = (heavy or "").strip() or once_on
        rest = [version for version in spread if version != suite] or spread
        heavy_note = f" (not {suite}, which runs the heavy NetBox tests)" if rest != spread else ""
        return f"spread over {', '.join(rest)}{heavy_note}, those run as another user on {once_on}"
    return once_on or "none"


def choose_once_on(asked: str | None, found: list[str]) -> str | None:
    """The version whose suite runs the tests marked ``once``: ``asked`` when given (even one this run
    leaves out), else ONCE_DEFAULT when its interpreter was found, else the first version found."""
    if asked:
        return asked
    if ONCE_DEFAULT in found:
        return ONCE_DEFAULT
    return found[0] if found else None


def report(run: Run, totals: dict[str, int]) -> str:
    """Print one finished version's whole output; add its counts; return its one-line result."""
    log = run.output()
    print(f"===== Python {run.version} ({run.python}), exit status {run.proc.returncode} =====")
    print(log.rstrip(), flush=True)
    counts = parse_summary(log)
    status = run.proc.returncode
    label = f"Python {run.version}:"
    if status == 5:  # pytest collected nothing: that tests nothing
        totals["errors"] += 1
        return f"{label} ERROR, no tests were collected"
    if counts is None:
        totals["errors"] += 1
        return f"{label} ERROR, exit status {status} without a pytest summary (its output is above)"
    for word, number in counts.items():
        totals[word] += number
    line = f"{label} {summary_line(counts, run.seconds)}"
    if status != 0 and not (counts["failed"] or counts["errors"]):
        totals["errors"] += 1
        return f"{line}; ERROR, exit status {status}"
    return line


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
