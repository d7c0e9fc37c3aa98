#!/usr/bin/env bash
# Run the test suite: creates .venv with the test requirements on first use,
# then runs pytest, listing every skipped test with its reason (-rs). Tests of
# the etcd backend need Debian's etcd-server (/usr/bin/etcd); without it they
# are skipped with that reason.
#
#   scripts/run-tests.sh [pytest arguments]     # default: the whole suite (tests/)
#   scripts/run-tests.sh -m "not slow"          # the quick subset: no wheel builds or fresh venvs
#
# OSA_TEST_PYTHON (default python3) and OSA_TEST_VENV (default .venv) choose the
# interpreter and the venv; scripts/run-tests-pythons.py sets them to run the
# suite on every supported Python version.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${OSA_TEST_PYTHON:-python3}
venv=${OSA_TEST_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv --clear "$venv"
fi
"$venv/bin/pip" install -q -r test-requirements.txt
# With no paths given, pytest runs testpaths (tests/, set in tox.ini), also when options are given.
exec "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider "$@"
