#!/usr/bin/env bash
# Run the whole test suite: creates .venv with the test requirements on first
# use, then runs pytest. Tests of the etcd backend need Debian's etcd-server
# (/usr/bin/etcd); without it they are skipped with that reason.
#
#   scripts/run-tests.sh [pytest arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q -r test-requirements.txt
exec .venv/bin/python -m pytest -q -p no:cacheprovider "${@:-tests}"
