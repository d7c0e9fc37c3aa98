"""The command line of ``scripts/inventory-manage.py``: its actions, from one table.

Each action is an entry of :data:`ACTIONS` (its options and help, whether it
stores a version, the modifiers it takes) and a function; the parser, the
help, the usage checks, the ``--reason`` refusal and the dispatch all come
from that table, so adding an action adds an entry and its function. The
entry point (:mod:`osa_inventory.commands.manage`) runs the chosen action
through the commands' runner.

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
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from .. import __version__
from ..accounting import REASON_VARIABLE
from ..generate.config import USER_CONFIG
from ..deployment_config import DeploymentConfig, read_config
from ..errors import InventoryError
from ..inventory.changes import compare
from ..resources import manage_command
from ..storage import catalog
from ..storage.backend import Backend
from ..storage.settings import Settings, read_settings
from ..commands.runner import DEFAULT_CONFIG_DIR, Parser, chosen_config_dir
from ..terminal import escape, lines
from ..inventory import edits, entry_edits, move
from . import history_view, plan, recording, stale, transfer, versions, views
from .formatting import FORMATS, Lines, render_data, render_table
from ..storage.change import change_checked, change_stored, load_required, preview_change
from .stores import open_configured_backend, open_file_backend

EXIT_STALE = 3
NAMES_SHOWN = 20
#: What an action gives: data or lines to print, and the exit status.
Result = tuple[str | list[str], int]
def build_parser(default_environment: str) -> argparse.ArgumentParser:
    """The command line: the options of :data:`ACTIONS` and their modifiers, in the help sections of :data:`GROUPS`."""
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
    modifiers = _modifiers()
    for key, title in GROUPS.items():
        group = p.add_argument_group(title)
        for action in ACTIONS:
            if action.group == key:
                for option in action.options:
                    group.add_argument(*option.names, **option.settings)
        for option in modifiers.get(key, ()):
            group.add_argument(*option.names, **option.settings)
    return p


class _Parser(Parser):
    """The commands' parser, except that with ``--plan`` a usage error is one ``ERROR:`` line and exit status 1.

    ``--plan`` exits 2 when changes are pending; argparse's usage status 2 would read as that in CI.
    """

    plan = False

    def error(self, message: str):  # type: ignore[override]
        if not self.plan:
            super().error(message)
        self.exit(1, f"ERROR: {escape(message)}\n")


def asks_for_plan(argv: Sequence[str] | None) -> bool:
    """Whether the command line has ``--plan`` (or an abbreviation argparse would take for it)."""
    words = sys.argv[1:] if argv is None else list(argv)
    flags = (w.split("=", 1)[0] for w in words if w.startswith("--"))
    return any(len(f) > 3 and "--plan".startswith(f) for f in flags)


def _given(args: argparse.Namespace, option: Option) -> bool:
    return getattr(args, option.dest) not in (None, False)


def chosen_actions(args: argparse.Namespace) -> list[Action]:
    """The actions the command line asks for (any of an action's options chooses it)."""
    return [action for action in ACTIONS if any(_given(args, o) for o in action.options)]


def check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Action:
    """The one action asked for, with modifiers that go with it; a usage error otherwise."""
    chosen = chosen_actions(args)
    if not chosen:
        parser.error("nothing to do; choose one of " + ", ".join(a.long for a in ACTIONS))
    if len(chosen) == 2 and any(a.name == "plan" for a in chosen) and any(a.previews for a in chosen):
        return next(a for a in chosen if a.previews)  # --plan previews it: shown, not stored
    if len(chosen) > 1:
        if any(a.name == "plan" for a in chosen):
            previewed = [a.long for a in ACTIONS if a.previews]
            previewed = ", ".join(previewed[:-1]) + " or " + previewed[-1]
            parser.error("--plan only shows what the next inventory run would store and changes nothing; "
                         "run it alone, then " + " ".join(a.short for a in chosen if a.name != "plan")
                         + f" as a command of its own (--plan previews {previewed} only)")
        parser.error("choose one thing to do at a time (only -r, -d and --clear-ips combine)")
    action = chosen[0]
    if (action.name == "move") != (args.to is not None):
        parser.error("--move NAME and --to HOST go together")
    if args.with_containers and not args.remove_item:
        parser.error("--with-containers goes with -r/--remove-item")
    for modifier in ("strict", "force"):
        if getattr(args, modifier) and modifier not in action.modifiers:
            takers = [a.long for a in ACTIONS if modifier in a.modifiers]
            parser.error(f"--{modifier} goes with {' or '.join(takers)}")
    if args.diff is not None and len(args.diff) > 2:
        parser.error("--diff takes at most two versions")
    return action


def _storing() -> str:
    """The options of the actions that store a version, as --reason's help and refusal name them."""
    names = [o.names[0] for a in ACTIONS if a.stores for o in a.options]
    return ", ".join(names[:-1]) + " or " + names[-1]


def reason_refusal(args: argparse.Namespace, action: Action) -> str | None:
    """Why ``--reason`` is refused with ``action`` (None: it is kept, or not given)."""
    if args.reason is not None and action.previews and args.plan:
        return (f"--reason is kept with the version {action.long} stores, and with --plan it stores none; "
                "give it when you run the command without --plan")
    if args.reason is None or action.stores:
        return None
    # Refused rather than ignored: the operator would believe the reason was kept.
    shown = action.long + (f" ({action.note})" if action.note else "")
    return (f"--reason is kept with the inventory version a change stores, and {shown} "
            f"stores none; give it with {_storing()}")


class Context:
    """Where the tool works, opened lazily; closes what it opened."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.config_dir = chosen_config_dir(args.config)
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


def _listing(action: str, inventory: dict, args: argparse.Namespace) -> str | list[str]:
    fmt = args.format
    if action == "list-host":
        rows = views.host_rows(inventory, args.sort)
        if fmt != "table":
            return render_data(rows, fmt)
        return [render_table(views.HOST_COLUMNS, [views.host_table_cells(r) for r in rows])]
    # The column titles are OSA's, so that what operators read and parse stays the same.
    if action == "list-groups":
        data = views.groups_per_host(inventory)
        if fmt != "table":
            return render_data(data, fmt)
        return [render_table(("container_name", "groups"), list(data.items()))]
    if action == "list-containers":
        data = views.hosts_per_group(inventory)
        if fmt != "table":
            return render_data(data, fmt)
        return [render_table(("groups", "container_name"), [(g, Lines(h)) for g, h in data.items()])]
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


def _entry_edit(ctx: Context, change: Callable[[dict, DeploymentConfig], list[str]], words: list[str]) -> Result:
    """One entry edit checked against the config: stored under the lock, or with ``--plan`` only shown (exit 2)."""
    args = ctx.args
    # The config as every inventory run reads it: the edit must be one the next run keeps.
    config = read_config(ctx.config_dir, args.environment, ctx.unknown_groups())
    backend = ctx.open_work()
    where = backend.describe()  # plugin code that may fail: before the change, so a failure stores nothing
    if args.plan:
        stored, edited, notes = preview_change(backend, lambda inventory: change(inventory, config))
        if edited == stored:
            return notes + [f"no change: {where} already holds this; nothing would be written"], plan.NO_CHANGE
        return ([f"would change {where} (nothing was written; run the command without --plan to store it):"]
                + notes + versions.diff_lines(stored, edited)), plan.CHANGES
    account = recording.account(args, recording.words(*words))
    written, notes, _result = change_checked(backend, lambda inventory: change(inventory, config), account)
    return list(notes) + [f"stored in {where}" if written else "nothing changed; nothing was written"], 0


def _set_address(ctx: Context) -> Result:
    name, *assignments = ctx.args.set_address
    return _entry_edit(ctx, lambda inv, dep: entry_edits.set_addresses(inv, name, assignments, dep.config),
                       ["--set-address", name, *assignments])


def _rename(ctx: Context) -> Result:
    old, new = ctx.args.rename
    return _entry_edit(ctx, lambda inv, dep: entry_edits.rename(inv, old, new, dep.config), ["--rename", old, new])


def _move(ctx: Context) -> Result:
    name, host = ctx.args.move, ctx.args.to
    return _entry_edit(ctx, lambda inv, dep: move.move(inv, name, host, dep), ["--move", name, "--to", host])


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


def _history(ctx: Context) -> str | list[str]:
    rows = versions.history(ctx.open_work())
    notes = [f"note: {n}" for n in history_view.notes(rows)]
    if ctx.args.format != "table":
        if notes:  # stdout stays pure data
            print(lines(notes), file=sys.stderr)
        return render_data(history_view.as_data(rows), ctx.args.format)
    return [history_view.as_table(rows)] + notes


def _diff(ctx: Context) -> str | list[str]:
    backend = ctx.open_work()
    pair = versions.pick_pair(backend, ctx.args.diff)
    if isinstance(pair, str):
        return [pair] if ctx.args.format == "table" else render_data({"changes": None, "note": pair},
                                                                     ctx.args.format)
    a, b = pair
    advice = "compare other versions (--history lists them)"
    old, new = versions.read_checked(backend, a, advice), versions.read_checked(backend, b, advice)
    if ctx.args.format != "table":
        return render_data({"from": a, "to": b, "changes": asdict(compare(old, new))}, ctx.args.format)
    head = [f"--- version {a}", f"+++ version {b}"]
    return head + (versions.diff_lines(old, new) or ["no differences"])


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


def _check_stale(ctx: Context) -> tuple[str | list[str], int]:
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
    return out, status


def _plan(ctx: Context) -> tuple[str | list[str], int]:
    # Same config reading and checks as the inventory script, before storage is touched.
    deployment = read_config(ctx.config_dir, ctx.args.environment, ctx.unknown_groups())
    result = plan.make_plan(ctx.open_work(), deployment)
    if ctx.args.format != "table":
        return render_data(result.to_data(), ctx.args.format), result.status
    manage = manage_command(ctx.config_dir)
    return plan.plan_text(result, manage), result.status


def _list_backends(ctx: Context) -> str | list[str]:
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
    return [table, f"selected: backend {chosen} (from {settings.describe()})"]


def run(args: argparse.Namespace, action: Action) -> Result:
    """Do ``action`` and return what to print and the exit status.

    What to print is data (JSON or YAML, printed exactly) or, for people, a
    list of lines that are escaped for the terminal as they are printed.
    """
    ctx = Context(args)
    try:
        return action.run(ctx)
    finally:
        ctx.close()


def _listed(name: str) -> Callable[[Context], Result]:
    def listing(ctx: Context) -> Result:
        # Read as api.open_inventory reads (one function), but not read-only: a listing may finish an
        # abandoned Craton write, as docs/craton.md says; only --plan promises to write nothing.
        return _listing(name, load_required(ctx.open_work()), ctx.args), 0
    return listing


def _always_0(work: Callable[[Context], str | list[str]]) -> Callable[[Context], Result]:
    def run(ctx: Context) -> Result:
        return work(ctx), 0
    return run


@dataclass(frozen=True)
class Option:
    """One command-line option: its names and argparse's settings for it."""

    names: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        """Where argparse keeps its value."""
        return self.settings.get("dest") or self.names[-1].lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Action:
    """One thing the tool does: the options that choose it and what they may go with.

    Everything about an action (its options and help, its place in the help,
    the usage checks, whether ``--reason`` is kept, the dispatch) comes from
    its entry in :data:`ACTIONS`; adding an action adds an entry and its function.
    """

    name: str
    group: str                              # its help section, a key of GROUPS
    options: tuple[Option, ...]             # any of them chooses the action (-r, -d and --clear-ips together)
    run: Callable[[Context], Result]
    stores: bool = False                    # stores an inventory version, so it keeps --reason in its record
    modifiers: tuple[str, ...] = ()         # of --force, --strict: the ones it takes
    previews: bool = False                  # with --plan: shown (exit 2 if it changes something), not stored
    note: str = ""                          # what usage errors add to its name

    @property
    def long(self) -> str:
        """``--remove-item/--remove-group/--clear-ips``: its options' long names."""
        return "/".join(o.names[-1] for o in self.options)

    @property
    def short(self) -> str:
        """``-r/-d/--clear-ips``: its options' shortest names."""
        return "/".join(o.names[0] for o in self.options)


#: The help sections, in order, and what each says of its options.
GROUPS = {
    "listings": "listings (read only)",
    "changes": "changes (may be combined; made under the backend's lock and stored only if something changed)",
    "entries": "editing one host or container (checked against the config, made under the backend's lock; "
               "with --plan: shown, exit status 2, nothing written)",
    "moving": "moving the inventory",
    "versions": "versions (backends that keep history)",
    "checks": "checks",
}

ACTIONS: tuple[Action, ...] = (
    Action("list-backends", "listings", (Option(("--list-backends",), dict(
        action="store_true",
        help="every storage backend available (plugin_paths folders, installed distributions, built-in), "
             "where each comes from and whether it offers lock and history")),), _always_0(_list_backends)),
    Action("list-host", "listings", (Option(("-l", "--list-host"), dict(
        action="store_true", help="table of every host and container: " + ", ".join(views.HOST_COLUMNS))),),
        _listed("list-host")),
    Action("list-groups", "listings", (Option(("-g", "--list-groups"), dict(
        action="store_true", help="each host and container with the groups it belongs to")),),
        _listed("list-groups")),
    Action("list-containers", "listings", (Option(("-G", "--list-containers"), dict(
        action="store_true",
        help="each group with the hosts and containers it holds, one per line (every group that has any)")),),
        _listed("list-containers")),
    Action("export", "listings", (Option(("-e", "--export"), dict(
        action="store_true",
        help='print {"hosts": {NAME: {"hostvars": ..., "groups": [...]}}, "all": <all.vars>, '
             '"groups": {GROUP: ...}} as JSON (--import gives back exactly this inventory)')),), _listed("export")),
    Action("edit", "changes", (
        Option(("-r", "--remove-item"), dict(
            metavar="NAME", action="append",
            help="remove host or container NAME from every group and from hostvars (repeatable); "
                 "the next inventory run recreates it if the config still produces it")),
        Option(("-d", "--remove-group"), dict(
            metavar="NAME", action="append",
            help="remove group NAME, and its place in other groups' children (repeatable)")),
        Option(("--clear-ips",), dict(
            action="store_true",
            help="drop the addresses of every container (not bare-metal hosts) so that the next inventory run "
                 "assigns new ones, e.g. after changing cidr_networks"))),
        _always_0(_edit), stores=True),
    Action("set-address", "entries", (Option(("--set-address",), dict(
        nargs="+", metavar=("NAME", "NETWORK=ADDRESS"),
        help="set host or container NAME's address on each network NETWORK (a cidr_networks name, e.g. "
             "management=172.29.236.250); for the management network ansible_host and management_address "
             "follow; the address must be a free one of that network outside used_ips")),),
        _set_address, stores=True, previews=True),
    Action("rename", "entries", (Option(("--rename",), dict(
        nargs=2, metavar=("OLD", "NEW"),
        help="rename host or container OLD to NEW everywhere (hostvars, groups, container_name; a physical "
             "host's containers and physical_host follow), keeping its addresses")),),
        _rename, stores=True, previews=True),
    Action("move", "entries", (Option(("--move",), dict(
        metavar="NAME",
        help="with --to HOST: re-home container NAME to HOST, another physical host of its group (a failed "
             "server's containers), named by OSA's pattern for HOST, keeping each address still valid on "
             "HOST's networks and taking new ones where not")),),
        _move, stores=True, previews=True),
    Action("migrate", "moving", (Option(("--migrate-to",), dict(
        metavar="SECTION",
        help="copy the inventory into the backend of osa.ini section [SECTION], read it back and compare; "
             "the source is not changed")),), _always_0(_migrate), stores=True, modifiers=("force",)),
    Action("import", "moving", (Option(("--import",), dict(
        dest="import_file", metavar="FILE",
        help="validate FILE (an openstack_inventory.json written by OpenStack-Ansible, or an --export) and "
             "store it as the inventory")),), _always_0(_import), stores=True, modifiers=("force",)),
    Action("adopt", "moving", (Option(("--adopt",), dict(
        action="store_true",
        help="label the deployment stored where osa.ini points with this config's deployment name (etcd's "
             "[etcd] deployment), when the stored name differs because it was renamed or stored before it "
             "had one")),), _always_0(lambda ctx: [ctx.open_work().adopt()]),
        note="it relabels the deployment and stores no inventory version"),
    Action("history", "versions", (Option(("--history",), dict(
        action="store_true",
        help="list the stored versions, each named by its id and dated when it was written, the current one "
             "marked, with what changed since the one before")),), _always_0(_history)),
    Action("diff", "versions", (Option(("--diff",), dict(
        metavar="VERSION", nargs="*",
        help="show what changed: no version = previous vs current; A = A vs current; A B = from A to B")),),
        _always_0(_diff)),
    Action("restore", "versions", (Option(("--restore",), dict(
        metavar="VERSION",
        help="store VERSION as the current inventory (itself a new version, so it can be undone); works when "
             "the current inventory is unreadable")),), _always_0(_restore), stores=True),
    Action("check-stale", "checks", (Option(("--check-stale",), dict(
        action="store_true",
        help="list stored hosts and containers that the current config no longer produces (removed hosts, "
             "containers beyond a lowered affinity)")),), _check_stale, modifiers=("strict",)),
    Action("plan", "checks", (Option(("--plan",), dict(
        action="store_true",
        help="generate from the current config in memory, as the next inventory run would, and show what "
             "storing it would change (hosts and containers added, addresses assigned, groups and variables "
             "changed); writes nothing; exit status 0: no change, 2: changes, 1: error")),), _plan),
)


def _modifiers() -> dict[str, tuple[Option, ...]]:
    """The options that change how an action works, by help section (after that section's actions)."""
    return {
        "listings": (Option(("-s", "--sort"), dict(
            metavar="COLUMN", choices=views.HOST_COLUMNS, default=views.DEFAULT_SORT,
            help="column to sort --list-host by, then by name; a missing component sorts as "
                 f"{views.UNDEFINED_COMPONENT}, other empty values last (one of {', '.join(views.HOST_COLUMNS)}; "
                 "default: %(default)s, as in OSA)")),),
        "changes": (
            Option(("--with-containers",), dict(
                action="store_true", help="with -r: also remove the containers of each removed physical host")),
            Option(("--reason",), dict(
                metavar="TEXT",
                help=f"why: kept with the version stored by {_storing()}, and shown by --history "
                     f"(default: ${REASON_VARIABLE})"))),
        "entries": (Option(("--to",), dict(
            metavar="HOST", help="with --move: the physical host the container moves to")),),
        "moving": (Option(("--force",), dict(
            action="store_true", help="let " + " / ".join(a.long for a in ACTIONS if "force" in a.modifiers)
                                      + " replace a different inventory the target already holds")),),
        "checks": (Option(("--strict",), dict(
            action="store_true", help="with --check-stale: exit 3 if anything is stale")),),
    }
