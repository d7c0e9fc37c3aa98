#!/usr/bin/env python3
"""A real NetBox for the tests: installed, started and stopped on this machine, on loopback only.

    scripts/netbox-server.py start [--background] [--keep-data] [--for-tests] [--nice N]
    scripts/netbox-server.py stop [--if-unused]
    scripts/netbox-server.py status
    scripts/netbox-server.py reset
    scripts/netbox-server.py path
    scripts/netbox-server.py lock [--check]

``start`` installs NetBox (the version pinned in constraints/netbox-4.7.3-py3.12.txt, into a venv made
with Python 3.12) when the cache lacks it, then starts its own PostgreSQL cluster (unix socket only, in
a private folder; as the ``postgres`` user when run as root, since PostgreSQL refuses root), its own
Redis (unix socket only, no persistence) and gunicorn on 127.0.0.1 on a free port. The first start also
migrates the database and makes an admin with a write token and a ``reader`` user whose token can only
read; the migrated database is kept as a template. Every start begins from that template (so data does
not survive ``stop``) unless ``--keep-data``; ``reset`` restores it on a running server.

Everything lives in one cache folder outside the checkout, ``$OSA_NETBOX_HOME`` (default
``/var/cache/osa-inventory/netbox-4.7.3`` for root, else ``~/.cache/osa-inventory/netbox-4.7.3``), in a
sub-folder named after the lock file's digest, so a changed pin builds afresh and a second start takes
seconds. Its ``state.json`` (``path`` prints where) tells the tests the URL, the tokens, the pids, the
versions and the status: starting, ready, failed (with the reason), stopped.

``stop`` stops only the processes a start recorded, by pid and start time, never by name. ``--if-unused``
(the tests' fixture) stops a server only when a test session started it and no other session holds it.
``lock`` writes the lock file from what pip resolves today. Every failure is one line naming what failed
and what to do. Only the standard library (and the project's bounded reader) is used: this runs before
any venv exists.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import hashlib
import importlib.util
import json
import os
import pwd
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lib"))
from osa_inventory.bounded import parse_json, read_file  # noqa: E402
from osa_inventory.errors import InventoryError  # noqa: E402

_SPEC = importlib.util.spec_from_file_location("lock_test_requirements",
                                               os.path.join(ROOT, "scripts", "lock-test-requirements.py"))
locking = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(locking)

NETBOX_VERSION = "4.7.3"
PYTHON_VERSION = "3.12"
LOCK_FILE = os.path.join(ROOT, "constraints", f"netbox-{NETBOX_VERSION}-py{PYTHON_VERSION}.txt")
# Bumped when the cached layout or the bootstrap changes, so old caches are rebuilt, not misread.
LAYOUT = "1"
PG_MIN_MAJOR = 14  # NetBox 4.x needs PostgreSQL 14 or newer
ADMIN_USER = "admin"
READER_USER = "reader"
DATABASE = "netbox"
TEMPLATE = "netbox_template"
KEEP_ALIVE = 300  # seconds; see start_gunicorn
WORKERS, THREADS = 2, 4  # enough for four suites side by side; about 700 MB less than NetBox's five workers
SMALL_FILE = 1024 * 1024
READY_TIMEOUT = float(os.environ.get("OSA_NETBOX_READY_TIMEOUT", "600"))
LOCK_WAIT = 3600.0  # a cold start under load; longer means a stuck holder
STOP_WAIT = 30.0
PROG = "netbox-server.py"
EXIT_NOT_RUNNING = 3
EXIT_STARTING = 4


class ServerError(InventoryError):
    """A step of the test server failed; the message is the one line to print."""


class Interrupted(BaseException):
    """A signal asked this process to stop; started processes are stopped on the way out."""


# ---------------------------------------------------------------- where things are

def default_home() -> str:
    """The cache folder: $OSA_NETBOX_HOME, else one other users can traverse for root (PostgreSQL runs as
    ``postgres`` then, and root's home is private), else the user's cache folder."""
    if os.environ.get("OSA_NETBOX_HOME"):
        return os.path.abspath(os.environ["OSA_NETBOX_HOME"])
    if os.geteuid() == 0:
        return f"/var/cache/osa-inventory/netbox-{NETBOX_VERSION}"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "osa-inventory", f"netbox-{NETBOX_VERSION}")


def cache_key(lock_text: bytes) -> str:
    """The sub-folder name for a lock file's content: a changed pin (or LAYOUT) gives a new folder."""
    return hashlib.sha256(lock_text + b"\0layout " + LAYOUT.encode()).hexdigest()[:12]


class Paths:
    """Every file of one cached server, below HOME/KEY."""

    def __init__(self, home: str, key: str):
        self.home = home
        self.key = key
        self.base = os.path.join(home, key)
        self.state = os.path.join(self.base, "state.json")
        self.secrets = os.path.join(self.base, "secrets.json")
        self.built = os.path.join(self.base, "built.json")  # written last by a complete cold start
        self.start_lock = os.path.join(self.base, "start.lock")
        self.users_lock = os.path.join(self.base, "users.lock")
        self.venv = os.path.join(self.base, "venv")
        self.venv_done = os.path.join(self.base, "venv.done")
        self.netbox_root = os.path.join(self.base, "root")
        self.config = os.path.join(self.netbox_root, "conf", "configuration.py")
        self.pgdata = os.path.join(self.base, "pgdata")
        self.run = os.path.join(self.base, "run")  # PostgreSQL's socket and log, owned by its user
        self.pg_log = os.path.join(self.run, "postgres.log")
        self.redis_dir = os.path.join(self.base, "redis")
        self.redis_socket = os.path.join(self.redis_dir, "redis.sock")
        self.logs = os.path.join(self.base, "logs")
        self.setup_log = os.path.join(self.logs, "setup.log")
        self.start_log = os.path.join(self.logs, "start.log")
        self.gunicorn_log = os.path.join(self.logs, "gunicorn.log")
        self.redis_log = os.path.join(self.logs, "redis.log")

    def bin(self, name: str) -> str:
        return os.path.join(self.venv, "bin", name)


def current_paths() -> Paths:
    try:
        lock_text = read_file(LOCK_FILE, limit=SMALL_FILE, error=ServerError)
    except FileNotFoundError:
        raise ServerError(f"{LOCK_FILE} is missing; write it with: {sys.argv[0]} lock") from None
    return Paths(default_home(), cache_key(lock_text))


# ---------------------------------------------------------------- small tools

def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def read_json(path: str, what: str) -> Any:
    """A small JSON file of ours, or None when it is absent; damaged or hostile ones are one-line errors."""
    advice = f"only {PROG} writes {what}: remove it and run the command again"
    try:
        data = read_file(path, limit=SMALL_FILE, error=ServerError, follow_links=False)
        value = parse_json(data, shown=path, error=ServerError)
    except FileNotFoundError:
        return None
    except ServerError as exc:
        raise ServerError(f"{exc}; {advice}") from None
    if not isinstance(value, dict):
        raise ServerError(f"{path}: is not a JSON object; {advice}")
    return value


def write_json(path: str, value: dict) -> None:
    """Replace ``path`` atomically with ``value``, readable by this user only (it holds tokens)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[19]) if len(fields) > 19 and fields[0] != "Z" else None


def record(pid: int) -> dict[str, int]:
    """How a started process is remembered: its pid and start time, so a reused pid is never taken for it."""
    started = process_start_time(pid)
    if started is None:
        raise ServerError(f"process {pid} exited as soon as it started")
    return {"pid": pid, "start_time": started}


def alive(rec: Any) -> bool:
    """Whether the process ``rec`` (from record()) still runs: the same pid with the same start time."""
    if not (isinstance(rec, dict) and isinstance(rec.get("pid"), int) and isinstance(rec.get("start_time"), int)
            and rec["pid"] > 1):
        return False
    return process_start_time(rec["pid"]) == rec["start_time"]


def terminate(rec: Any, sig: int = signal.SIGTERM, wait: float = STOP_WAIT) -> None:
    """Signal the recorded process ``rec`` and wait for it to go; SIGKILL after ``wait`` seconds."""
    if not alive(rec):
        return
    try:
        os.kill(rec["pid"], sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait
    while alive(rec):
        if time.monotonic() > deadline:
            try:
                os.kill(rec["pid"], signal.SIGKILL)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
        time.sleep(0.1)


def last_line(path: str) -> str:
    """The last non-empty line of a log, for one-line errors ("" when there is none)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            lines = [line.strip() for line in fh.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


# The server is on loopback: a proxy from the environment must not carry the requests elsewhere.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, token: str, timeout: float = 5.0) -> tuple[int, Any]:
    """(status, parsed JSON body or None) of one GET with ``token``; status 0 when nothing answered."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    try:
        with _LOOPBACK.open(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read(SMALL_FILE)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(SMALL_FILE)
    except (OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


# ---------------------------------------------------------------- what the machine must have

def pg_bin_dir() -> str | None:
    """Debian's newest PostgreSQL server programs (``$OSA_NETBOX_PG_BIN`` overrides), or None."""
    if os.environ.get("OSA_NETBOX_PG_BIN"):
        folder = os.environ["OSA_NETBOX_PG_BIN"]
        return folder if os.access(os.path.join(folder, "initdb"), os.X_OK) else None
    found = []
    for name in os.listdir("/usr/lib/postgresql") if os.path.isdir("/usr/lib/postgresql") else ():
        folder = os.path.join("/usr/lib/postgresql", name, "bin")
        if name.isdigit() and int(name) >= PG_MIN_MAJOR and os.access(os.path.join(folder, "initdb"), os.X_OK):
            found.append((int(name), folder))
    return max(found)[1] if found else None


class Tools:
    """The programs a start needs, found once; missing ones make one line with the apt-get command."""

    def __init__(self, paths: Paths):
        missing: list[tuple[str, str]] = []  # (what, Debian package)
        self.pg_bin = pg_bin_dir()
        if self.pg_bin is None:
            missing.append((f"PostgreSQL {PG_MIN_MAJOR}+ server programs", "postgresql"))
        self.redis = shutil.which("redis-server")
        if self.redis is None:
            missing.append(("redis-server", "redis-server"))
        self.pg_user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.pg_user = pwd.getpwnam(os.environ.get("OSA_NETBOX_PG_USER", "postgres"))
            except KeyError:
                missing.append(("the postgres system user (PostgreSQL refuses to run as root)", "postgresql"))
        self.python: str | None = None
        if not os.path.exists(paths.venv_done):
            # psycopg[c] is compiled from source against libpq.
            if shutil.which("gcc") is None:
                missing.append(("gcc (to build psycopg-c)", "gcc"))
            if shutil.which("pg_config") is None:
                missing.append(("pg_config (libpq's headers, to build psycopg-c)", "libpq-dev"))
        if missing:
            packages = " ".join(dict.fromkeys(package for _, package in missing))
            raise ServerError(f"missing {', '.join(what for what, _ in missing)}; install with: "
                              f"apt-get install {packages}")
        if not os.path.exists(paths.venv_done):
            self.python = locking.pythons.find_python(PYTHON_VERSION)
        if not os.path.exists(paths.venv_done) and self.python is None:
            looked = ", ".join(locking.pythons.candidates(PYTHON_VERSION))
            raise ServerError(f"no Python {PYTHON_VERSION} found (in {looked}); "
                              f"NetBox {NETBOX_VERSION} needs it: install it, e.g. pyenv install {PYTHON_VERSION}")

    def pg(self, name: str) -> str:
        return os.path.join(self.pg_bin, name)

    def as_pg_user(self) -> dict[str, Any]:
        """subprocess arguments that run a command as PostgreSQL's user (nothing when not root)."""
        if self.pg_user is None:
            return {}
        return {"user": self.pg_user.pw_uid, "group": self.pg_user.pw_gid, "extra_groups": []}


# ---------------------------------------------------------------- the running job

class Job:
    """One start, stop or reset: holds the folder's lock, writes the state, runs and records processes."""

    def __init__(self, paths: Paths):
        self.paths = paths
        self.child: subprocess.Popen | None = None  # the step running now (pip, migrate ...)
        self._lock_fd: int | None = None

    # -- lock and state

    def acquire(self, wait: float = LOCK_WAIT, fd: int | None = None) -> None:
        """Hold the folder's lock (one start, stop or reset at a time), waiting for a holder to finish."""
        os.makedirs(self.paths.base, mode=0o711, exist_ok=True)
        if fd is not None:  # inherited from the parent of a background start, already locked
            self._lock_fd = fd
            return
        self._lock_fd = os.open(self.paths.start_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait
        said = False
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServerError(f"{self.paths.start_lock} is still held after {wait:.0f} s by another "
                                      f"{PROG}; see {PROG} status, or stop it with: {sys.argv[0]} stop") from None
                if not said:
                    print(f"{PROG}: waiting for another {PROG} working on {self.paths.base}", file=sys.stderr)
                    said = True
                time.sleep(0.5)

    def state(self) -> dict:
        return read_json(self.paths.state, "the state file") or {}

    def write_state(self, **changes: Any) -> dict:
        state = self.state()
        state.update(changes, updated=now(), home=self.paths.home, key=self.paths.key,
                     netbox_version_pinned=NETBOX_VERSION, state_file=self.paths.state)
        write_json(self.paths.state, state)
        return state

    def record_process(self, name: str, pid: int) -> dict:
        """Remember a started server process at once, so stop finds it even if this start dies next."""
        state = self.state()
        pids = state.get("pids") if isinstance(state.get("pids"), dict) else {}
        pids[name] = record(pid)
        return self.write_state(pids=pids)

    # -- steps

    def run(self, what: str, cmd: list[str], *, env: dict | None = None, log: str | None = None,
            nice: int = 0, timeout: float | None = None, **kwargs: Any) -> subprocess.CompletedProcess:
        """Run one step, output to ``log`` (or captured); a failure is one line naming the step and the log."""
        if nice:
            cmd = ["nice", "-n", str(nice), *cmd]
        out = open(log, "ab") if log else subprocess.PIPE
        try:
            self.child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
            try:
                output, _ = self.child.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_child()
                raise ServerError(f"{what} took longer than {timeout:.0f} s; see {log or 'its output'}") from None
            except BaseException:  # interrupted: the step goes with us
                self.kill_child()
                raise
            status = self.child.returncode
        except OSError as exc:
            raise ServerError(f"{what}: cannot run {cmd[0]} ({exc.strerror})") from None
        finally:
            self.child = None
            if log:
                out.close()
        text = output.decode("utf-8", "replace") if output else ""
        if status != 0:
            detail = last_line(log) if log else (text.strip().splitlines() or [""])[-1][:300]
            where = f"; see {log}" if log else ""
            raise ServerError(f"{what} failed (exit status {status}): {detail}{where}")
        return subprocess.CompletedProcess(cmd, status, text, "")

    def kill_child(self) -> None:
        child = self.child
        if child is not None and child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGKILL)  # its own session: pip's or migrate's helpers too
            except ProcessLookupError:
                pass
            child.wait()

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def netbox_env(paths: Paths) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(NETBOX_ROOT=paths.netbox_root, DJANGO_SETTINGS_MODULE="netbox.settings",
               PATH=f"{paths.bin('')}:{env.get('PATH', '/usr/bin:/bin')}")
    return env


# ---------------------------------------------------------------- install

def say(message: str) -> None:
    """Progress of a long start (stdout; a background start's goes to its log)."""
    print(f"{PROG}: {message}", flush=True)


def install_netbox(job: Job, tools: Tools, nice: int) -> None:
    """The venv with exactly the locked NetBox and its requirements (rebuilt when not known complete)."""
    paths = job.paths
    if os.path.exists(paths.venv_done):
        probe = subprocess.run([paths.bin("python"), "-c", "import netbox"], capture_output=True,
                               env=netbox_env(paths))
        if probe.returncode == 0:
            return
        os.unlink(paths.venv_done)  # its interpreter went away (a pyenv upgrade): build it again
        tools.python = locking.pythons.find_python(PYTHON_VERSION)
        if tools.python is None:
            raise ServerError(f"the venv in {paths.venv} no longer works and no Python {PYTHON_VERSION} "
                              f"is found; install it, e.g. pyenv install {PYTHON_VERSION}")
    shutil.rmtree(paths.venv, ignore_errors=True)
    say(f"installing NetBox {NETBOX_VERSION} into {paths.venv} (minutes; log {paths.setup_log})")
    job.run("making the venv", [tools.python, "-m", "venv", paths.venv], log=paths.setup_log)
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_CONSTRAINT", "PIP_REQUIRE_VIRTUALENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    job.run(f"pip install netbox=={NETBOX_VERSION} (constraints {os.path.relpath(LOCK_FILE, ROOT)})",
            [paths.bin("python"), "-m", "pip", "install", "-q", "-c", LOCK_FILE, f"netbox=={NETBOX_VERSION}"],
            env=env, log=paths.setup_log, nice=nice)
    with open(paths.venv_done, "w", encoding="utf-8") as fh:
        fh.write(f"{tools.python}\n")


# ---------------------------------------------------------------- configuration

def secrets_of(paths: Paths) -> dict[str, str]:
    """The instance's secret key, token pepper and admin password: made once, kept with the database."""
    found = read_json(paths.secrets, "the secrets file")
    keys = ("secret_key", "pepper", "admin_password")
    if found and all(isinstance(found.get(k), str) and len(found[k]) >= 50 for k in keys):
        return found
    made = {key: secrets.token_urlsafe(48) for key in keys}  # 64 characters each; NetBox wants 50+
    write_json(paths.secrets, made)
    return made


def render_configuration(paths: Paths, secret: dict[str, str]) -> str:
    """NetBox's configuration.py for this instance: loopback, its own sockets, no outbound calls."""
    settings = {
        "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
        "DATABASES": {"default": {
            "ENGINE": "django.db.backends.postgresql", "NAME": DATABASE, "USER": "netbox", "PASSWORD": "",
            "HOST": paths.run, "PORT": "",
            # A reset drops the connections; the health check reconnects instead of failing one request.
            "CONN_MAX_AGE": 300, "CONN_HEALTH_CHECKS": True}},
        "REDIS": {"tasks": {"URL": f"unix://{paths.redis_socket}", "DATABASE": 0},
                  "caching": {"URL": f"unix://{paths.redis_socket}?db=1"}},
        "SECRET_KEY": secret["secret_key"],
        "API_TOKEN_PEPPERS": {1: secret["pepper"]},
        "ISOLATED_DEPLOYMENT": True,
        "CENSUS_REPORTING_ENABLED": False,
        "TIME_ZONE": "UTC",
    }
    lines = [f"# Written by {os.path.relpath(__file__, ROOT)} of osa-inventory at every start; edits are lost."]
    lines += [f"{name} = {value!r}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def write_configuration(paths: Paths) -> None:
    os.makedirs(os.path.dirname(paths.config), exist_ok=True)
    text = render_configuration(paths, secrets_of(paths))
    fd = os.open(paths.config + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(paths.config + ".tmp", paths.config)


# ---------------------------------------------------------------- PostgreSQL

def check_reachable(paths: Paths, tools: Tools) -> None:
    """PostgreSQL's user must reach its folders: a private folder above the cache stops it."""
    if tools.pg_user is None:
        return
    probe = subprocess.run(["test", "-x", paths.base], cwd="/", **tools.as_pg_user())
    if probe.returncode == 0:
        return
    blocked = paths.base
    folder = paths.base
    while folder != "/":  # name the first folder the user cannot pass through
        parent = os.path.dirname(folder)
        if subprocess.run(["test", "-x", parent], cwd="/", **tools.as_pg_user()).returncode == 0:
            blocked = folder
            break
        folder = parent
    raise ServerError(f"PostgreSQL runs as user {tools.pg_user.pw_name}, who cannot enter {blocked}; "
                      f"let other users pass through it (chmod o+x {blocked}) or set OSA_NETBOX_HOME "
                      "to another folder")


def make_pg_folders(paths: Paths, tools: Tools) -> None:
    for folder in (paths.pgdata, paths.run):
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        if tools.pg_user is not None:
            os.chown(folder, tools.pg_user.pw_uid, tools.pg_user.pw_gid)


def init_cluster(job: Job, tools: Tools) -> None:
    """A new cluster whose only way in is the socket in its private run folder (no TCP at all)."""
    paths = job.paths
    shutil.rmtree(paths.pgdata, ignore_errors=True)
    make_pg_folders(paths, tools)
    job.run("initdb", [tools.pg("initdb"), "-D", paths.pgdata, "--username=netbox", "--auth=trust",
                       "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"],
            log=None, cwd=paths.base, **tools.as_pg_user())
    # trust is safe here: the socket's folder is 0700, so only its owner (and root) can connect.
    settings = ["listen_addresses = ''", f"unix_socket_directories = '{paths.run}'",
                "unix_socket_permissions = 0700", "synchronous_commit = off",
                "shared_buffers = 128MB", "max_connections = 100"]
    with open(os.path.join(paths.pgdata, "postgresql.conf"), "a", encoding="utf-8") as fh:
        fh.write("\n# osa-inventory test NetBox\n" + "\n".join(settings) + "\n")


def start_postgres(job: Job, tools: Tools) -> None:
    paths = job.paths
    make_pg_folders(paths, tools)
    pid_file = os.path.join(paths.pgdata, "postmaster.pid")
    job.run("starting PostgreSQL", [tools.pg("pg_ctl"), "start", "-D", paths.pgdata, "-l", paths.pg_log,
                                    "-w", "-t", "120", "-s"],
            log=None, cwd=paths.base, **tools.as_pg_user())
    with open(pid_file, encoding="ascii") as fh:
        pid = int(fh.readline().strip())
    job.record_process("postgres", pid)


def psql(job: Job, tools: Tools, sql: str, database: str = "postgres") -> str:
    done = job.run(f"psql ({sql.split()[0]} ...)",
                   [tools.pg("psql"), "-X", "-h", job.paths.run, "-U", "netbox", "-d", database,
                    "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql], log=None)
    return done.stdout.strip()


def restore_template(job: Job, tools: Tools) -> None:
    """The database as the first start left it (migrated, with the users and tokens), and an empty cache."""
    psql(job, tools, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    psql(job, tools, f"CREATE DATABASE {DATABASE} TEMPLATE {TEMPLATE}")
    redis_command(job.paths.redis_socket, "FLUSHALL")


# ---------------------------------------------------------------- Redis

def redis_command(sock_path: str, *words: str, timeout: float = 5.0) -> bytes:
    """One Redis command over its unix socket; the raw first reply line."""
    payload = f"*{len(words)}\r\n".encode() + b"".join(f"${len(w)}\r\n{w}\r\n".encode() for w in words)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(sock_path)
        sock.sendall(payload)
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


def start_redis(job: Job, tools: Tools) -> None:
    paths = job.paths
    os.makedirs(paths.redis_dir, mode=0o700, exist_ok=True)
    if os.path.exists(paths.redis_socket):
        os.unlink(paths.redis_socket)  # a killed Redis leaves it behind
    cmd = [tools.redis, "--port", "0", "--unixsocket", paths.redis_socket, "--unixsocketperm", "700",
           "--save", "", "--appendonly", "no", "--dir", paths.redis_dir, "--logfile", paths.redis_log,
           "--daemonize", "no", "--databases", "4"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, cwd=paths.redis_dir)
    job.record_process("redis", proc.pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"redis-server exited with status {proc.returncode}: {last_line(paths.redis_log)}; "
                              f"see {paths.redis_log}")
        try:
            if redis_command(paths.redis_socket, "PING").startswith(b"+PONG"):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise ServerError(f"redis-server did not answer on {paths.redis_socket} within 30 s; see {paths.redis_log}")


# ---------------------------------------------------------------- NetBox

BOOTSTRAP = """
import json, sys
import django
django.setup()
from core.models import ObjectType
from users.constants import OBJECTPERMISSION_OBJECT_TYPES
from users.models import ObjectPermission, Token, User
import os
password = os.environ.pop("OSA_NETBOX_ADMIN_PASSWORD")  # not in argv: every user can read a command line
admin_name, reader_name = sys.argv[1:3]
admin = User.objects.create_superuser(admin_name, "", password)
write = Token(user=admin, write_enabled=True, description="osa-inventory tests: write")
write.save()
reader = User.objects.create_user(reader_name, "", password)
view = ObjectPermission.objects.create(name="read-everything", actions=["view"])
view.object_types.set(ObjectType.objects.filter(OBJECTPERMISSION_OBJECT_TYPES))
reader.object_permissions.add(view)
read = Token(user=reader, write_enabled=False, description="osa-inventory tests: read only")
read.save()
print(json.dumps({"write_token": f"nbt_{write.key}.{write.token}", "read_token": f"nbt_{read.key}.{read.token}"}))
"""


def build_database(job: Job, tools: Tools, nice: int) -> dict:
    """A new cluster, NetBox's migrations, the users and tokens; kept as the template of every start."""
    paths = job.paths
    say(f"making the database: NetBox's migrations take about 6 minutes on 2 idle cores (log {paths.setup_log})")
    init_cluster(job, tools)
    start_postgres(job, tools)
    psql(job, tools, f"CREATE DATABASE {DATABASE}")
    started = time.monotonic()
    job.run("NetBox's migrations (netbox migrate)", [paths.bin("netbox"), "migrate", "--no-input"],
            env=netbox_env(paths), log=paths.setup_log, nice=nice)
    migrate_seconds = round(time.monotonic() - started, 1)
    env = dict(netbox_env(paths), OSA_NETBOX_ADMIN_PASSWORD=secrets_of(paths)["admin_password"])
    done = job.run("making the NetBox users and tokens",
                   [paths.bin("python"), "-c", BOOTSTRAP, ADMIN_USER, READER_USER], env=env, log=None)
    try:
        tokens = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ServerError(f"making the NetBox users and tokens printed no tokens: {done.stdout[-300:]!r}") from None
    psql(job, tools, f"CREATE DATABASE {TEMPLATE} TEMPLATE {DATABASE}")
    psql(job, tools, f"ALTER DATABASE {TEMPLATE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
    built = {"tokens": tokens, "migrate_seconds": migrate_seconds, "built": now()}
    write_json(paths.built, built)
    return built


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(job: Job, token: str) -> tuple[str, dict]:
    """gunicorn on a free loopback port, waited for until the API answers ``token``; (url, /api/status/)."""
    paths = job.paths
    for attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_start = os.path.getsize(paths.gunicorn_log) if os.path.exists(paths.gunicorn_log) else 0
        cmd = [paths.bin("gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS),
               "--threads", str(THREADS), "--timeout", "300", "--graceful-timeout", "3",
               # gunicorn closes an idle kept-alive connection after 2 s by default; a client that
               # reuses it at that moment (a loaded CI machine) gets the connection reset on a DELETE
               # or POST, which requests does not retry. Clients close first, long before this.
               "--keep-alive", str(KEEP_ALIVE),
               # NetBox is imported once, before the workers fork (no connection is open by then): the
               # import is 10+ s of CPU that each worker would otherwise repeat.
               "--preload",
               # gunicorn 26's control socket defaults to one path in the user's home for every instance.
               "--no-control-socket",
               "--error-logfile", paths.gunicorn_log, "--capture-output", "netbox.wsgi:application"]
        proc = subprocess.Popen(cmd, env=netbox_env(paths), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, cwd=paths.netbox_root)
        job.record_process("gunicorn", proc.pid)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            status, body = http_get(f"{url}/api/status/", token)
            if status == 200 and isinstance(body, dict):
                return url, body
            if status not in (0, 502, 503):
                raise ServerError(f"NetBox at {url} answered /api/status/ with HTTP {status}: "
                                  f"{json.dumps(body)[:200]}; see {paths.gunicorn_log}")
            time.sleep(0.5)
        else:
            raise ServerError(f"NetBox at {url} did not answer within {READY_TIMEOUT:.0f} s; "
                              f"see {paths.gunicorn_log}")
        with open(paths.gunicorn_log, "rb") as fh:
            fh.seek(log_start)
            taken = b"Address already in use" in fh.read()
        if not taken or attempt == 2:
            raise ServerError(f"gunicorn exited with status {proc.returncode}: {last_line(paths.gunicorn_log)}; "
                              f"see {paths.gunicorn_log}")
    raise AssertionError("unreachable")


def versions(paths: Paths, tools: Tools, status: dict) -> dict[str, str]:
    pins = locking.read_pins(LOCK_FILE)
    pg = subprocess.run([tools.pg("postgres"), "--version"], capture_output=True, text=True).stdout
    redis = subprocess.run([tools.redis, "--version"], capture_output=True, text=True).stdout
    pg_version = re.search(r"\(PostgreSQL\) (\S+)", pg)
    redis_version = re.search(r"\bv=(\S+)", redis)
    return {"netbox": str(status.get("netbox-version")), "django": str(status.get("django-version")),
            "python": str(status.get("python-version")), "gunicorn": pins.get("gunicorn", "?"),
            "postgresql": pg_version.group(1) if pg_version else "?",
            "redis": redis_version.group(1) if redis_version else "?"}


# ---------------------------------------------------------------- commands

def running(job: Job) -> dict | None:
    """The state when every recorded server process runs and the API answers, else None."""
    state = job.state()
    pids = state.get("pids") if isinstance(state.get("pids"), dict) else {}
    if state.get("status") != "ready" or not all(alive(pids.get(n)) for n in ("postgres", "redis", "gunicorn")):
        return None
    code, _ = http_get(f"{state.get('url')}/api/status/", str(state.get("write_token")))
    return state if code == 200 else None


def stop_recorded(job: Job) -> list[str]:
    """Stop every process the state records (gunicorn, Redis, PostgreSQL); the names of those stopped."""
    state = job.state()
    pids = state.get("pids") if isinstance(state.get("pids"), dict) else {}
    stopped = []
    # SIGINT is gunicorn's quick shutdown and PostgreSQL's fast one; Redis stops on SIGTERM.
    for name, sig in (("gunicorn", signal.SIGINT), ("redis", signal.SIGTERM), ("postgres", signal.SIGINT)):
        if alive(pids.get(name)):
            terminate(pids[name], sig)
            stopped.append(name)
    job.write_state(pids={name: rec for name, rec in pids.items() if name == "starter" and alive(rec)})
    return stopped


def do_start(job: Job, opts: argparse.Namespace, notify: Callable[[dict], None]) -> dict:
    """Start (installing and migrating first when the cache lacks it); the final state."""
    paths = job.paths
    current = running(job)
    if current is not None:
        if not opts.for_tests and current.get("for_tests"):
            current = job.write_state(for_tests=False)  # started by hand now: a test session leaves it running
        notify(current)
        return current
    try:
        tools = Tools(paths)
    except ServerError as exc:
        failed = job.write_state(status="failed", reason=str(exc), url=None)
        notify(failed)
        raise
    stop_recorded(job)  # what a dead or interrupted start left behind
    job.write_state(status="starting", reason=None, url=None, write_token=None, read_token=None,
                    for_tests=bool(opts.for_tests), started=now(), pids={"starter": record(os.getpid())})
    notify(job.state())
    timings: dict[str, float] = {}
    clock = time.monotonic()
    os.makedirs(paths.logs, mode=0o700, exist_ok=True)
    check_reachable(paths, tools)
    install_netbox(job, tools, opts.nice)
    timings["install"] = round(time.monotonic() - clock, 1)
    write_configuration(paths)
    start_redis(job, tools)
    built = read_json(paths.built, "the build record")
    fresh = built is None or not os.path.exists(os.path.join(paths.pgdata, "PG_VERSION"))
    if fresh:
        built = build_database(job, tools, opts.nice)
    else:
        start_postgres(job, tools)
        if not opts.keep_data:
            restore_template(job, tools)
    timings["database"] = round(time.monotonic() - clock - timings["install"], 1)
    url, status = start_gunicorn(job, built["tokens"]["write_token"])
    timings["total"] = round(time.monotonic() - clock, 1)
    state = job.write_state(status="ready", url=url, api=f"{url}/api", reason=None,
                            write_token=built["tokens"]["write_token"], read_token=built["tokens"]["read_token"],
                            admin_user=ADMIN_USER, reader_user=READER_USER, versions=versions(paths, tools, status),
                            timings=timings, cold=fresh, migrate_seconds=built.get("migrate_seconds"),
                            logs=paths.logs)
    pids = state["pids"]
    pids.pop("starter", None)
    state = job.write_state(pids=pids)
    if fresh:
        prune_other_keys(paths)
    return state


def prune_other_keys(paths: Paths) -> None:
    """Remove caches of other lock files (552 MB of venv each) whose servers do not run."""
    for name in os.listdir(paths.home):
        other = os.path.join(paths.home, name)
        if name == paths.key or len(name) != 12 or not all(c in "0123456789abcdef" for c in name):
            continue
        try:
            state = read_json(os.path.join(other, "state.json"), "the state file") or {}
        except ServerError:
            state = {}
        pids = state.get("pids") if isinstance(state.get("pids"), dict) else {}
        if not any(alive(rec) for rec in pids.values()):
            shutil.rmtree(other, ignore_errors=True)


def describe(state: dict) -> str:
    if state.get("status") == "ready":
        v = state.get("versions") or {}
        return (f"NetBox {v.get('netbox', '?')} ready at {state.get('url')} (write token {state.get('write_token')}, "
                f"read-only token {state.get('read_token')}); state: {state.get('state_file')}")
    if state.get("status") == "failed":
        return f"NetBox failed to start: {state.get('reason')}"
    return f"NetBox is {state.get('status', 'not started')}; state: {state.get('state_file')}"


def cmd_start(opts: argparse.Namespace, paths: Paths) -> int:
    if opts.background and not opts.child_fd:
        return start_in_background(opts, paths)
    job = Job(paths)
    notify_fd = opts.child_fd
    lock_fd = int(os.environ.pop("OSA_NETBOX_LOCK_FD", "0")) or None

    def notify(state: dict) -> None:
        nonlocal notify_fd
        if notify_fd:
            os.write(notify_fd, (json.dumps({"status": state.get("status")}) + "\n").encode())
            os.close(notify_fd)
            notify_fd = None

    job.acquire(fd=lock_fd)
    try:
        state = do_start(job, opts, notify)
    except (ServerError, Interrupted) as exc:
        job.kill_child()
        stop_recorded(job)
        reason = str(exc) if isinstance(exc, ServerError) else f"interrupted by signal {exc}"
        job.write_state(status="failed", reason=reason, url=None)
        notify({"status": "failed"})
        if isinstance(exc, Interrupted):
            print(f"{PROG}: {reason}; the processes it started are stopped", file=sys.stderr)
            return 1
        raise
    finally:
        job.release()
    print(describe(state))
    return 0


def start_in_background(opts: argparse.Namespace, paths: Paths) -> int:
    """Start in a detached child and return once it has written the first state (starting, ready, failed)."""
    job = Job(paths)
    job.acquire()
    os.makedirs(paths.logs, mode=0o700, exist_ok=True)
    read_end, write_end = os.pipe()
    argv = [sys.executable, os.path.abspath(__file__), "start", "--child-fd", str(write_end), "--nice", str(opts.nice)]
    argv += ["--keep-data"] if opts.keep_data else []
    argv += ["--for-tests"] if opts.for_tests else []
    # The child inherits the locked descriptor: the lock passes to it without a gap another start could use.
    os.set_inheritable(job._lock_fd, True)
    env = dict(os.environ, OSA_NETBOX_LOCK_FD=str(job._lock_fd))
    with open(paths.start_log, "ab") as log:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                 pass_fds=(write_end, job._lock_fd), start_new_session=True)
    os.close(write_end)
    job.release()
    line = b""
    deadline = time.monotonic() + 120
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([read_end], [], [], 1.0)
        if ready:
            chunk = os.read(read_end, 1024)
            if not chunk:
                break
            line += chunk
    os.close(read_end)
    state = job.state()
    if not line:
        print(f"{PROG}: the background start (pid {child.pid}) ended before writing its state; "
              f"see {paths.start_log}", file=sys.stderr)
        return 1
    if state.get("status") == "failed":
        print(f"{PROG}: {state.get('reason')}", file=sys.stderr)
        return 1
    if state.get("status") == "ready":
        print(describe(state))
    else:
        print(f"NetBox starting in the background (pid {child.pid}, log {paths.start_log}); "
              f"state: {paths.state}")
    return 0


def cmd_stop(opts: argparse.Namespace, paths: Paths) -> int:
    if not os.path.isdir(paths.base):
        print(f"NetBox is not running (nothing in {paths.base})")
        return 0
    job = Job(paths)
    state = job.state()
    starter = (state.get("pids") or {}).get("starter") if isinstance(state.get("pids"), dict) else None
    if opts.if_unused:
        if not state.get("for_tests"):
            print("NetBox left running: it was not started by a test session")
            return 0
        fd = os.open(paths.users_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            print("NetBox left running: another test session uses it")
            return 0
        # Held until this process exits, so no session can take the server while it stops.
    if state.get("status") == "starting" and alive(starter):
        terminate(starter, signal.SIGTERM, wait=60)  # an unfinished start stops what it started itself
    job.acquire()
    try:
        stopped = stop_recorded(job)
        job.write_state(status="stopped", url=None)
    finally:
        job.release()
    print(f"NetBox stopped ({', '.join(stopped) or 'nothing was running'})")
    return 0


def cmd_status(opts: argparse.Namespace, paths: Paths) -> int:
    job = Job(paths)
    state = job.state() if os.path.isdir(paths.base) else {}
    pids = state.get("pids") if isinstance(state.get("pids"), dict) else {}
    if state.get("status") == "ready":
        dead = [n for n in ("postgres", "redis", "gunicorn") if not alive(pids.get(n))]
        if dead:
            print(f"NetBox is broken: {', '.join(dead)} no longer running; start it again with: {sys.argv[0]} start")
            return 1
        code, _ = http_get(f"{state.get('url')}/api/status/", str(state.get("write_token")))
        if code != 200:
            print(f"NetBox at {state.get('url')} does not answer (HTTP {code or 'nothing'}); "
                  f"see {paths.gunicorn_log}")
            return 1
        print(describe(state))
        return 0
    if state.get("status") == "starting" and alive(pids.get("starter")):
        print(describe(state))
        return EXIT_STARTING
    if state.get("status") == "failed":
        print(describe(state))
        return 1
    print(f"NetBox is not running (state: {paths.state})")
    return EXIT_NOT_RUNNING


def cmd_reset(opts: argparse.Namespace, paths: Paths) -> int:
    job = Job(paths)
    job.acquire()
    try:
        if running(job) is None:
            raise ServerError(f"NetBox is not running; start it with: {sys.argv[0]} start")
        tools = Tools(paths)
        restore_template(job, tools)
    finally:
        job.release()
    print("NetBox's database is back to its migrated template (admin, reader and their tokens only)")
    return 0


def cmd_path(opts: argparse.Namespace, paths: Paths) -> int:
    print(paths.state)
    return 0


def cmd_lock(opts: argparse.Namespace, paths: Paths | None) -> int:
    python = locking.pythons.find_python(PYTHON_VERSION)
    if python is None:
        raise ServerError(f"no Python {PYTHON_VERSION} found; install it, e.g. pyenv install {PYTHON_VERSION}")
    pins = locking.resolve(python, [f"netbox=={NETBOX_VERSION}"])
    if opts.check:
        changes = locking.moved_pins(LOCK_FILE, pins)
        print("; ".join(changes) if changes else f"{os.path.relpath(LOCK_FILE, ROOT)} is up to date")
        return 1 if changes else 0
    header = [f"# Exact versions of NetBox {NETBOX_VERSION} and its requirements on Python {PYTHON_VERSION}, "
              "as pip resolved them, for the test NetBox.",
              "# Made by scripts/netbox-server.py lock; refresh with it, never by hand (docs/netbox-server.md)."]
    with open(LOCK_FILE, "w", encoding="utf-8") as fh:
        fh.write(locking.render_pins(header, pins))
    print(f"{len(pins)} pins written to {os.path.relpath(LOCK_FILE, ROOT)}")
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0], allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="install if needed, then start (or report the running server)")
    start.add_argument("--background", action="store_true",
                       help="return once the start is under way; state.json says when it is ready or failed")
    start.add_argument("--keep-data", action="store_true", help="keep the database of the last run")
    start.add_argument("--for-tests", action="store_true",
                       help="a test session's start: stop --if-unused may stop it")
    start.add_argument("--nice", type=int, default=0, metavar="N", help="niceness of pip and the migrations")
    start.add_argument("--child-fd", type=int, default=0, help=argparse.SUPPRESS)
    stop = sub.add_parser("stop", help="stop the processes a start recorded")
    stop.add_argument("--if-unused", action="store_true",
                      help="only a server a test session started, and only when no other session holds it")
    sub.add_parser("status", help="exit status 0 when running, 4 while starting, 3 when not, 1 when broken or failed")
    sub.add_parser("reset", help="restore the migrated template database on the running server")
    sub.add_parser("path", help="print the state file's path")
    lock = sub.add_parser("lock", help=f"write {os.path.relpath(LOCK_FILE, ROOT)} from what pip resolves today")
    lock.add_argument("--check", action="store_true", help="report what would move; write nothing")
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    commands = {"start": cmd_start, "stop": cmd_stop, "status": cmd_status, "reset": cmd_reset,
                "path": cmd_path, "lock": cmd_lock}
    try:
        paths = None if opts.command == "lock" else current_paths()
        return commands[opts.command](opts, paths)
    except ServerError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except Interrupted as exc:
        print(f"{PROG}: interrupted by {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
