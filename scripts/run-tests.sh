#!/usr/bin/env bash
# Run the test suite: creates .venv on first use and installs the test requirements at
# the exact versions of the lock file for this Python (constraints/py3.X.txt), then runs
# pytest, listing every skipped test with its reason (-rs). Tests of the etcd backend
# need Debian's etcd-server (/usr/bin/etcd); without it they are skipped with that reason.
#
#   scripts/run-tests.sh [pytest arguments]     # default: the whole suite (tests/)
#   scripts/run-tests.sh -m "not slow"          # the quick subset: no wheel builds or fresh venvs
#
# OSA_TEST_PYTHON (default python3) and OSA_TEST_VENV (default .venv) choose the
# interpreter and the venv; scripts/run-tests-pythons.py sets them to run the
# suite on every supported Python version. scripts/lock-test-requirements.py
# refreshes the lock files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${OSA_TEST_PYTHON:-python3}
venv=${OSA_TEST_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv --clear "$venv"
fi
version=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
lock=$root/constraints/py$version.txt
if [ ! -f "$lock" ]; then
  # A Python newer than every lock file: the newest older lock, said once, rather than whatever the index has today.
  minor=${version#3.}
  while [ "$minor" -gt 0 ] && [ ! -f "$root/constraints/py3.$minor.txt" ]; do minor=$((minor - 1)); done
  if [ "$minor" -eq 0 ]; then
    echo "run-tests.sh: no lock file for Python $version in constraints/; run scripts/lock-test-requirements.py" >&2
    exit 1
  fi
  lock=$root/constraints/py3.$minor.txt
  echo "run-tests.sh: Python $version has no lock file of its own; using constraints/py3.$minor.txt" >&2
fi
# Every pip the tests run (wheel builds, fresh venvs) installs the same versions.
export PIP_CONSTRAINT=$lock
"$venv/bin/pip" install -q -r test-requirements.txt
# With no paths given, pytest runs testpaths (tests/, set in tox.ini), also when options are given.
exec "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider "$@"
