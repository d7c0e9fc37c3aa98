"""The command line of ``scripts/inventory-manage.py``.

Flags are OpenStack-Ansible's ``inventory-manage.py`` ones (with its defects
fixed) plus migration, import, history, the stale check and the plan. Output
goes to stdout; a failure is one ``ERROR:`` line on stderr and exit status 1;
``--check-stale --strict`` exits 3 when it finds stale entries; ``--plan``
exits 2 when the next inventory run would store a change (and, so that 2
keeps that one meaning, its usage errors exit 1, not argparse's 2). Every write
carries a change record (:mod:`.recording`): the command, ``--reason`` (or
``$OSA_INVENTORY_REASON``), who and where.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import asdict
from typing import Sequence

from .. import __version__
from ..accounting import REASON_VARIABLE
from ..generate.config import USER_CONFIG
from ..deployment_config import read_config
from ..errors import InventoryError, one_line
from ..resources import environment_dir, manage_command
from ..storage import catalog
from ..storage.loader import Backend
from ..storage.settings import Settings, read_settings
from ..stdout_guard import stdout_for_result_only
from . import edits, history_view, plan, recording, stale, transfer, versions, views
from .formatting import FORMATS, render_data, render_table
from .stores import change_stored, load_required, open_configured_backend, open_file_backend

DEFAULT_CONFIG_DIR = "/etc/openstack_deploy"
EXIT_STALE = 3
NAMES_SHOWN = 20
ACTIONS = ("--list-backends", "--list-host", "--list-groups", "--list-containers", "--export",
           "--remove-item/--remove-group/--clear-ips", "--migrate-to", "--import", "--adopt", "--history",
           "--diff", "--restore", "--check-stale", "--plan")
#: The actions that store an inventory version, and so keep a --reason in its record.
RECORDED = ("edit", "migrate", "import", "restore")
FLAGS = {"list-backends": "--list-backends", "list-host": "--list-host", "list-groups": "--list-groups",
         "list-containers": "--list-containers", "export": "--export", "adopt": "--adopt (it relabels the "
         "deployment and stores no inventory version)", "history": "--history", "diff": "--diff",
         "check-stale": "--check-stale", "plan": "--plan"}


def default_config_dir() -> str:
    return os.environ.get("OSA_CONFIG_DIR") or DEFAULT_CONFIG_DIR


def build_parser(default_environment: str) -> argparse.ArgumentParser:
    p = _Parser(
        description="Inspect and change the stored OpenStack-Ansible inventory, move it between storage "
                    "backends and roll it back. Works on the backend osa.ini selects ($OSA_INI, else "
                    "/etc/ansible/osa.ini), or on one file with -f.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    where = p.add_argument_group("what to work on")
    where.add_argument("--config", metavar="DIR",
                       help="deployment config folder (openstack_user_config.yml, conf.d/, env.d/); "
                            f"default: $OSA_CONFIG_DIR, else {DEFAULT_CONFIG_DIR}")
    where.add_argument("-f", "--file", metavar="FILE",
                       help="work on this inventory file directly, ignoring osa.ini; changes are saved back "
                            "to this same file (openstack_inventory.json through the filesystem backend's "
                            "lock and backup archive; any other name by an atomic replace after copying the "
                            "old content to FILE.<UTC time>.bak)")
    where.add_argument("--environment", metavar="DIR", default=default_environment,
                       help="folder that contains the base env.d/ skeleton, for --check-stale and the "
                            "note -r prints about entries the config brings back (default: %(default)s)")
    where.add_argument("--format", choices=FORMATS, default="table",
                       help="output of listings, --history, --diff, --check-stale and --plan (default: table; "
                            "--export prints JSON unless yaml is asked for)")

    show = p.add_argument_group("listings (read only)")
    show.add_argument("--list-backends", action="store_true",
                      help="every storage backend available (plugin_paths folders, installed distributions, "
                           "built-in), where each comes from and whether it offers lock and history")
    show.add_argument("-l", "--list-host", action="store_true",
                      help="table of every host and container: " + ", ".join(views.HOST_COLUMNS))
    show.add_argument("-s", "--sort", metavar="COLUMN", choices=views.HOST_COLUMNS, default=views.DEFAULT_SORT,
                      help="column to sort --list-host by, then by name; a missing component sorts as "
                           f"{views.UNDEFINED_COMPONENT}, other empty values last "
                           f"(one of {', '.join(views.HOST_COLUMNS)}; default: %(default)s, as in OSA)")
    show.add_argument("-g", "--list-groups", action="store_true",
                      help="each host and container with the groups it belongs to")
    show.add_argument("-G", "--list-containers", action="store_true",
                      help="each group with the hosts and containers it holds, one per line "
                           "(every group that has any)")
    show.add_argument("-e", "--export", action="store_true",
                      help='print {"hosts": {NAME: {"hostvars": ..., "groups": [...]}}, "all": <all.vars>, '
                           '"groups": {GROUP: ...}} as JSON (--import gives back exactly this inventory)')

    change = p.add_argument_group(
        "changes (may be combined; made under the backend's lock and stored only if something changed)")
    change.add_argument("-r", "--remove-item", metavar="NAME", action="append",
                        help="remove host or container NAME from every group and from hostvars (repeatable); "
                             "the next inventory run recreates it if the config still produces it")
    change.add_argument("--with-containers", action="store_true",
                        help="with -r: also remove the containers of each removed physical host")
    change.add_argument("-d", "--remove-group", metavar="NAME", action="append",
                        help="remove group NAME, and its place in other groups' children (repeatable)")
    change.add_argument("--clear-ips", action="store_true",
                        help="drop the addresses of every container (not bare-metal hosts) so that the next "
                             "inventory run assigns new ones, e.g. after changing cidr_networks")
    change.add_argument("--reason", metavar="TEXT",
                        help="why: kept with the version stored by -r/-d/--clear-ips, --restore, --migrate-to or "
                             f"--import, and shown by --history (default: ${REASON_VARIABLE})")

    move = p.add_argument_group("moving the inventory")
    move.add_argument("--migrate-to", metavar="SECTION",
                      help="copy the inventory into the backend of osa.ini section [SECTION], read it back "
                           "and compare; the source is not changed")
    move.add_argument("--import", dest="import_file", metavar="FILE",
                      help="validate FILE (an openstack_inventory.json written by OpenStack-Ansible, or an "
                           "--export) and store it as the inventory")
    move.add_argument("--adopt", action="store_true",
                      help="label the deployment stored where osa.ini points with this config's deployment "
                           "name (etcd's [etcd] deployment), when the stored name differs because it was renamed "
                           "or stored before it had one")
    move.add_argument("--force", action="store_true",
                      help="let --migrate-to / --import replace a different inventory the target already holds")

    past = p.add_argument_group("versions (backends that keep history)")
    past.add_argument("--history", action="store_true",
                      help="list the stored versions, each named by its id and dated when it was written, "
                           "the current one marked, with what changed since the one before")
    past.add_argument("--diff", metavar="VERSION", nargs="*",
                      help="show what changed: no version = previous vs current; A = A vs current; "
                           "A B = from A to B")
    past.add_argument("--restore", metavar="VERSION",
                      help="store VERSION as the current inventory (itself a new version, so it can be undone); "
                           "works when the current inventory is unreadable")

    check = p.add_argument_group("checks")
    check.add_argument("--check-stale", action="store_true",
                       help="list stored hosts and containers that the current config no longer produces "
                            "(removed hosts, containers beyond a lowered affinity)")
    check.add_argument("--strict", action="store_true", help="with --check-stale: exit 3 if anything is stale")
    check.add_argument("--plan", action="store_true",
                       help="generate from the current config in memory, as the next inventory run would, and "
                            "show what storing it would change (hosts and containers added, addresses assigned, "
                            "groups and variables changed); writes nothing; exit status 0: no change, "
                            "2: changes, 1: error")
    return p


class _Parser(argparse.ArgumentParser):
    """argparse, except that with ``--plan`` a usage error is one ``ERROR:`` line and exit status 1.

    ``--plan`` exits 2 when changes are pending; argparse's usage status 2 would read as that in CI.
    """

    plan = False

    def error(self, message: str):  # type: ignore[override]
        if not self.plan:
            super().error(message)
        self.exit(1, f"ERROR: {message}\n")


def _asks_for_plan(argv: Sequence[str] | None) -> bool:
    """Whether the command line has ``--plan`` (or an abbreviation argparse would take for it)."""
    words = sys.argv[1:] if argv is None else list(argv)
    flags = (w.split("=", 1)[0] for w in words if w.startswith("--"))
    return any(len(f) > 3 and "--plan".startswith(f) for f in flags)


_FLAGS = {"edit": "-r/-d/--clear-ips", "migrate": "--migrate-to", "import": "--import"}


def _chosen_actions(args: argparse.Namespace) -> list[str]:
    chosen = [name for name, on in (
        ("list-backends", args.list_backends), ("list-host", args.list_host), ("list-groups", args.list_groups),
        ("list-containers", args.list_containers), ("export", args.export),
        ("edit", bool(args.remove_item or args.remove_group or args.clear_ips)),
        ("migrate", args.migrate_to is not None), ("import", args.import_file is not None), ("adopt", args.adopt),
        ("history", args.history), ("diff", args.diff is not None), ("restore", args.restore is not None),
        ("check-stale", args.check_stale), ("plan", args.plan)) if on]
    return chosen


def _check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    chosen = _chosen_actions(args)
    if not chosen:
        parser.error("nothing to do; choose one of " + ", ".join(ACTIONS))
    if len(chosen) > 1:
        if "plan" in chosen:
            parser.error("--plan only shows what the next inventory run would store and changes nothing; "
                         "run it alone, then " + " ".join(_FLAGS.get(a, f"--{a}") for a in chosen if a != "plan")
                         + " as a command of its own")
        parser.error("choose one thing to do at a time (only -r, -d and --clear-ips combine)")
    action = chosen[0]
    if args.with_containers and not args.remove_item:
        parser.error("--with-containers goes with -r/--remove-item")
    if args.strict and action != "check-stale":
        parser.error("--strict goes with --check-stale")
    if args.force and action not in ("migrate", "import"):
        parser.error("--force goes with --migrate-to or --import")
    if args.diff is not None and len(args.diff) > 2:
        parser.error("--diff takes at most two versions")
    return action


class Context:
    """Where the tool works, opened lazily; closes what it opened."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.config_dir = os.path.abspath(args.config or default_config_dir())
        self._opened: list[Backend] = []
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        """osa.ini and the OSA_INVENTORY_* variables, read once."""
        if self._settings is None:
            self._settings = read_settings()
        return self._settings

    def unknown_groups(self) -> str:
        """``[inventory] unknown_host_groups``: the config checks accept what an inventory run accepts."""
        return str(self.settings().inventory["unknown_host_groups"])

    def open_work(self) -> Backend:
        """A new instance of the backend the tool works on (``--file`` or osa.ini's)."""
        if self.args.file:
            backend = open_file_backend(self.args.file)
        else:
            backend = open_configured_backend(self.config_dir, settings=self.settings())
        self._opened.append(backend)
        return backend

    def open_section(self, section: str) -> Backend:
        backend = open_configured_backend(self.config_dir, section, settings=self.settings())
        self._opened.append(backend)
        return backend

    def close(self) -> None:
        for backend in self._opened:
            with contextlib.suppress(InventoryError):
                backend.close()


def _listing(action: str, inventory: dict, args: argparse.Namespace) -> str:
    fmt = args.format
    if action == "list-host":
        rows = views.host_rows(inventory, args.sort)
        if fmt != "table":
            return render_data(rows, fmt)
        return render_table(views.HOST_COLUMNS, [views.host_table_cells(r) for r in rows])
    # The column titles are OSA's, so that what operators read and parse stays the same.
    if action == "list-groups":
        data = views.groups_per_host(inventory)
        if fmt != "table":
            return render_data(data, fmt)
        return render_table(("container_name", "groups"), list(data.items()))
    if action == "list-containers":
        data = views.hosts_per_group(inventory)
        if fmt != "table":
            return render_data(data, fmt)
        return render_table(("groups", "container_name"), [(g, "\n".join(h)) for g, h in data.items()])
    data = views.export(inventory)
    return render_data(data, "yaml") if fmt == "yaml" else json.dumps(data, indent=2, sort_keys=True)


def _predict_return(ctx: Context, inventory: dict) -> list[str]:
    # Tell the operator now, not after the next playbook run, that the config will bring entries back.
    if ctx.args.file and not ctx.args.config:
        return []  # a loose file: the default config folder may belong to another deployment
    if not os.path.isfile(os.path.join(ctx.config_dir, USER_CONFIG)):
        return []
    try:
        config, skeleton = stale.load_config(ctx.config_dir, ctx.args.environment)
        back = stale.missing_entries(inventory, config, skeleton, ctx.unknown_groups())
    except InventoryError as exc:
        return [f"note: could not compare with the config in {ctx.config_dir}: {exc}"]
    if not back:
        return []
    shown = ", ".join(back[:NAMES_SHOWN]) + (f" and {len(back) - NAMES_SHOWN} more" if len(back) > NAMES_SHOWN else "")
    return [f"note: the config in {ctx.config_dir} still produces {len(back)} entr"
            f"{'y' if len(back) == 1 else 'ies'} missing now, which the next inventory run will add: {shown}"]


def _edit(ctx: Context) -> list[str]:
    args = ctx.args
    backend = ctx.open_work()

    def change(inventory: dict) -> list[str]:
        notes = []
        if args.remove_item:
            notes += edits.remove_hosts(inventory, args.remove_item, args.with_containers)
        if args.remove_group:
            notes += edits.remove_groups(inventory, args.remove_group)
        if args.clear_ips:
            notes += edits.clear_ips(inventory)
        return notes

    where = backend.describe()  # plugin code that may fail: before the change, so a failure stores nothing
    account = recording.account(args, recording.edit_command(args))
    written, notes, result = change_stored(backend, change, account)
    lines = list(notes)
    lines.append(f"stored in {where}" if written else "nothing changed; nothing was written")
    if written and args.remove_item:
        lines += _predict_return(ctx, result)
    return lines


def _transfer_lines(what: str, result: transfer.Transfer, source: str, target: str) -> list[str]:
    counts = f"{result.hosts} hosts, {result.groups} groups, {result.size} bytes of JSON"
    if result.written:
        lines = [f"{what} {counts} from {source} to {target}; read back: identical"]
    else:
        lines = [f"{target} already holds this inventory ({counts}); nothing was written"]
    if result.note:
        lines.append(f"note: {result.note}")
    return lines


def _migrate(ctx: Context) -> list[str]:
    section = ctx.args.migrate_to
    source = ctx.open_work()
    target = ctx.open_section(section)
    source_where, target_where = source.describe(), target.describe()  # before anything is stored
    account = recording.account(ctx.args, recording.migrate_command(section, ctx.args.force, source_where))
    result = transfer.migrate(source, target, lambda: ctx.open_section(section), ctx.args.force, account)
    lines = _transfer_lines("copied", result, source_where, target_where)
    ini = ctx.settings().describe()
    lines.append(f"the source was not changed; to switch, set 'backend = {section}' in [inventory] of {ini} "
                 f"(or OSA_INVENTORY_BACKEND={section})")
    return lines


def _import(ctx: Context) -> list[str]:
    path = os.path.abspath(ctx.args.import_file)
    target = ctx.open_work()
    where = target.describe()  # before anything is stored
    account = recording.account(ctx.args, recording.import_command(path, ctx.args.force))
    result = transfer.import_file(path, target, ctx.open_work, ctx.args.force, account)
    return _transfer_lines("imported", result, path, where)


def _history(ctx: Context) -> str:
    rows = versions.history(ctx.open_work())
    notes = [f"note: {n}" for n in history_view.notes(rows)]
    if ctx.args.format != "table":
        for note in notes:  # stdout stays pure data
            print(note, file=sys.stderr)
        return render_data(history_view.as_data(rows), ctx.args.format)
    return "\n".join([history_view.as_table(rows)] + notes)


def _diff(ctx: Context) -> str:
    backend = ctx.open_work()
    pair = versions.pick_pair(backend, ctx.args.diff)
    if isinstance(pair, str):
        return pair if ctx.args.format == "table" else render_data({"changes": None, "note": pair}, ctx.args.format)
    a, b = pair
    advice = "compare other versions (--history lists them)"
    old, new = versions.read_checked(backend, a, advice), versions.read_checked(backend, b, advice)
    if ctx.args.format != "table":
        return render_data({"from": a, "to": b, "changes": asdict(versions.compare(old, new))}, ctx.args.format)
    lines = versions.diff_lines(old, new)
    head = [f"--- version {a}", f"+++ version {b}"]
    return "\n".join(head + (lines or ["no differences"]))


def _restore(ctx: Context) -> list[str]:
    backend = ctx.open_work()
    version = ctx.args.restore
    where = backend.describe()  # before anything is stored
    written, note = versions.restore(backend, version,
                                     recording.account(ctx.args, recording.restore_command(version)))
    if not written:
        return [f"{note}; nothing was written"]
    lines = [f"restored version {version} as the current inventory of {where}; "
             "the inventory it replaced is kept as a version (see --history)"]
    if note:
        lines.append(f"note: {note}")
    return lines


def _check_stale(ctx: Context) -> tuple[str, int]:
    stored = load_required(ctx.open_work())
    config, skeleton = stale.load_config(ctx.config_dir, ctx.args.environment)
    found = stale.find_stale(stored, config, skeleton, ctx.unknown_groups())
    missing = stale.missing_entries(stored, config, skeleton, ctx.unknown_groups())
    status = EXIT_STALE if found and ctx.args.strict else 0
    if ctx.args.format != "table":
        data = {"stale": [asdict(s) for s in found], "missing": missing}
        return render_data(data, ctx.args.format), status
    if not found:
        out = ["nothing stale: every stored entry is produced by the config"]
    else:
        out = [f"{len(found)} stored entr{'y is' if len(found) == 1 else 'ies are'} no longer produced by the "
               "config; remove them deliberately with -r NAME once their services are gone:",
               render_table(("name", "physical_host", "why"), [(s.name, s.physical_host, s.reason) for s in found])]
    if missing:
        out.append(f"the next inventory run will add {len(missing)} entr{'y' if len(missing) == 1 else 'ies'}: "
                   + ", ".join(missing))
    return "\n".join(out), status


def _plan(ctx: Context) -> tuple[str, int]:
    # Same config reading and checks as the inventory script, before storage is touched.
    deployment = read_config(ctx.config_dir, ctx.args.environment, ctx.unknown_groups())
    result = plan.make_plan(ctx.open_work(), deployment)
    if ctx.args.format != "table":
        return render_data(result.to_data(), ctx.args.format), result.status
    manage = manage_command(ctx.config_dir)
    return plan.plan_text(result, manage), result.status


def _list_backends(ctx: Context) -> str:
    settings = ctx.settings()
    rows = catalog.available(settings)
    if ctx.args.format != "table":
        return render_data([asdict(r) for r in rows], ctx.args.format)

    def offers(value: bool | str | None) -> str:
        if isinstance(value, str):
            return value
        return "?" if value is None else "yes" if value else "no"

    table = render_table(("backend", "source", "where", "lock", "history", "note"),
                         [(r.name, r.source, r.where, offers(r.lock), offers(r.history), r.note) for r in rows])
    section = settings.backend
    plugin = settings.plugin_for(section)
    chosen = section if section == plugin else f"{section} (plugin {plugin})"
    return f"{table}\nselected: backend {chosen} (from {settings.describe()})"


def run(args: argparse.Namespace, action: str) -> tuple[str, int]:
    """Do ``action`` and return what to print and the exit status."""
    ctx = Context(args)
    try:
        if action == "list-backends":
            return _list_backends(ctx), 0
        if action in ("list-host", "list-groups", "list-containers", "export"):
            return _listing(action, load_required(ctx.open_work()), args), 0
        if action == "edit":
            return "\n".join(_edit(ctx)), 0
        if action == "migrate":
            return "\n".join(_migrate(ctx)), 0
        if action == "import":
            return "\n".join(_import(ctx)), 0
        if action == "adopt":
            return ctx.open_work().adopt(), 0
        if action == "history":
            return _history(ctx), 0
        if action == "diff":
            return _diff(ctx), 0
        if action == "restore":
            return "\n".join(_restore(ctx)), 0
        if action == "plan":
            return _plan(ctx)
        return _check_stale(ctx)
    finally:
        ctx.close()


def main(argv: Sequence[str] | None = None, default_environment: str | None = None) -> int:
    """Entry point of scripts/inventory-manage.py; returns the exit status."""
    parser = build_parser(default_environment or os.getcwd())
    parser.plan = _asks_for_plan(argv)
    args = parser.parse_args(argv)
    action = _check_usage(parser, args)
    if args.reason is not None and action not in RECORDED:
        # Refused rather than ignored: the operator would believe the reason was kept.
        print(f"ERROR: --reason is kept with the inventory version a change stores, and {FLAGS.get(action, action)} "
              "stores none; give it with -r, -d, --clear-ips, --restore, --migrate-to or --import",
              file=sys.stderr)
        return 1
    try:
        # Listings may be read by programs (--format json): plugin output must not reach them.
        with stdout_for_result_only() as emit:
            output, status = run(args, action)
            emit(output + "\n")
    except InventoryError as exc:
        print(f"ERROR: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ERROR: interrupted; a change in progress was either stored whole or not at all", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line for the operator
        print(f"ERROR: unexpected {type(exc).__name__}: {one_line(exc)} (please report it)",
              file=sys.stderr)
        return 1
    return status


def console_main() -> int:
    """The ``openstack-ansible-inventory-manage`` console command: the script's flags, the packaged env.d."""
    return main(default_environment=environment_dir())
