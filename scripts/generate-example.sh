#!/usr/bin/env bash
# Generate the inventory of a shipped example config on the default
# (filesystem) backend, into a local folder, and print it.
#
#   scripts/generate-example.sh [aio|production] [OUTPUT_DIR]
#
# Creates .venv with the requirements on first use. The inventory is written
# to OUTPUT_DIR/openstack_inventory.json (default ./inventory-out) and
# printed on stdout; run it twice and the second run rewrites nothing. Config
# files already in OUTPUT_DIR that differ from the example are kept, not overwritten.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
example=${1:-aio}
out=${2:-inventory-out}
src="$root/etc/openstack_deploy/$example"
[ -d "$src" ] || { echo "ERROR: no example '$example'; choose one of: $(ls "$root/etc/openstack_deploy")" >&2; exit 1; }
# .venv/.requirements-installed marks a finished set-up. Runs started at once (the test
# suite on several Pythons in a fresh clone) take turns through a lock on this script,
# so none uses a .venv that another is still filling.
if [ ! -f "$root/.venv/.requirements-installed" ]; then
  exec 9<"$0"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  if [ ! -f "$root/.venv/.requirements-installed" ]; then
    [ -x "$root/.venv/bin/python" ] || python3 -m venv "$root/.venv" >&2
    "$root/.venv/bin/pip" install -q -r "$root/requirements.txt" >&2
    touch "$root/.venv/.requirements-installed"
  fi
  exec 9<&-
fi
mkdir -p "$out"
# Copy the example config in, file by file: what is missing is copied, what the
# user has edited is kept (and said so), so a second run never undoes an edit.
(cd "$src" && find . -type f) | sort | while IFS= read -r rel; do
  rel=${rel#./}
  if [ ! -e "$out/$rel" ]; then
    mkdir -p "$(dirname "$out/$rel")"
    cp -p "$src/$rel" "$out/$rel"
  elif ! cmp -s "$src/$rel" "$out/$rel"; then
    echo "note: keeping your edited $out/$rel; delete it to get the $example example's version back" >&2
  fi
done
# An osa.ini that selects the default backend, so a machine-wide
# /etc/ansible/osa.ini cannot send the example somewhere else.
ini="$out/osa.ini"
[ -f "$ini" ] || printf '[inventory]\nbackend = filesystem\n' > "$ini"
OSA_INI="$ini" exec "$root/.venv/bin/python" "$root/playbooks/inventory/dynamic_inventory.py" \
  --config "$out" --list
