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
# OUTPUT_DIR/.osa-example names the example a folder holds: another example, or a
# folder this script did not fill, is refused (one line, exit 1, nothing written),
# so two examples' files never mix into one config.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
example=${1:-aio}
out=${2:-inventory-out}
src="$root/etc/openstack_deploy/$example"
case "$example" in
  ""|*[!A-Za-z0-9_-]*) src="" ;;   # a name, never a path
esac
[ -n "$src" ] && [ -d "$src" ] || {
  echo "ERROR: no example '$example'; choose one of: $(cd "$root/etc/openstack_deploy" && echo *)" >&2; exit 1; }
marker="$out/.osa-example"
if [ -e "$out" ] && [ ! -d "$out" ]; then
  echo "ERROR: $out is not a folder; name a folder for the example's config and inventory" >&2
  exit 1
elif [ -f "$marker" ]; then
  held=$(cat "$marker")
  if [ "$held" != "$example" ]; then
    echo "ERROR: $out holds the '$held' example ($marker); generate '$example' into a folder of its own:" \
         "$(printf '%q ' "$0" "$example")$(printf '%q' "${out%/}-$example")" >&2
    exit 1
  fi
elif [ -d "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "ERROR: $out holds files but no example made by this script (no $marker); choose a new folder," \
       "or, if it holds the '$example' example from an earlier version of this script, mark it:" \
       "echo $example > $(printf '%q' "$marker")" >&2
  exit 1
fi
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
[ -f "$marker" ] || echo "$example" > "$marker"
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
