"""scripts/netbox-server.py and the ``netbox`` fixture: what they do without a NetBox, and with the real one.

Without a server: where the cache and the state file are, one-line failures (missing programs, a
private folder PostgreSQL cannot enter, damaged or hostile state files) whose advice works, stop touching
only the processes a start recorded (never a reused pid), stop interrupting an unfinished start, the
sharing rule of test sessions, the lock file, the configuration, and how the fixture waits.
With the real server (skipped without one): status and a second start find the running server.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from netbox_server import SCRIPT, NetBoxUnavailable, script, wait_for_state

# The script runs on the system's python3 (.ci/run) and the server it starts is the same for every suite:
# one version's suite tests them.
pytestmark = pytest.mark.once


def run(home, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The script with its cache in ``home`` and no OSA_ variables but ``env``'s."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
    full.update(OSA_NETBOX_HOME=str(home), **(env or {}))
    return subprocess.run([sys.executable, SCRIPT, *args], env=full, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def paths_in(home) -> script.Paths:
    with open(script.LOCK_FILE, "rb") as fh:
        return script.Paths(str(home), script.cache_key(fh.read()))


def write_state(home, **state) -> script.Paths:
    paths = paths_in(home)
    os.makedirs(paths.base, exist_ok=True)
    with open(paths.state, "w") as fh:
        json.dump(state, fh)
    return paths


def one_line(result: subprocess.CompletedProcess) -> str:
    """stderr of a failure: exactly one line, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def sleeper() -> subprocess.Popen:
    # SIGINT back to its default: a shell's background job (`cmd &` without job control) starts with it
    # ignored, and the stop tests expect a process that SIGINT ends, as gunicorn is.
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


# ---------------------------------------------------------------- where things are

def test_the_state_file_lives_in_a_folder_named_after_the_lock_file(tmp_path):
    result = run(tmp_path, "path")
    assert result.returncode == 0, result.stderr
    with open(script.LOCK_FILE, "rb") as fh:
        key = script.cache_key(fh.read())
    assert result.stdout.strip() == str(tmp_path / key / "state.json")
    # A changed pin builds afresh in another folder, so a cache never runs other versions than pinned.
    with open(script.LOCK_FILE, "rb") as fh:
        changed = fh.read().replace(b"gunicorn==", b"gunicorn==0")
    assert script.cache_key(changed) != key


def test_the_lock_file_pins_netbox_and_everything_it_installs(tmp_path):
    pins = script.locking.read_pins(script.LOCK_FILE)
    assert pins["netbox"] == script.NETBOX_VERSION
    for needed in ("django", "gunicorn", "psycopg", "psycopg-c", "djangorestframework"):
        assert needed in pins, needed
    with open(script.LOCK_FILE) as fh:
        entries = [line.strip() for line in fh if line.strip() and not line.startswith("#")]
    assert all("==" in e and " " not in e for e in entries)
    again = tmp_path / "again.txt"
    again.write_text(script.locking.render_pins(["# x"], {"B-b": "2", "a": "1"}))
    assert script.locking.read_pins(str(again)) == {"a": "1", "b-b": "2"}
    assert script.locking.moved_pins(str(again), {"a": "1", "B_b": "3", "c": "0"}) == ["b-b 2 -> 3", "c - -> 0"]


def test_the_configuration_keeps_netbox_on_loopback_and_its_own_sockets(tmp_path):
    paths = paths_in(tmp_path)
    secret = {"secret_key": "k" * 64, "pepper": "p" * 64, "admin_password": "a" * 64}
    namespace: dict = {}
    exec(script.render_configuration(paths, secret), namespace)  # it is Python NetBox imports
    assert namespace["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]
    database = namespace["DATABASES"]["default"]
    assert database["HOST"] == paths.run and database["PORT"] == ""  # a socket folder: no TCP
    assert namespace["REDIS"]["tasks"]["URL"] == f"unix://{paths.redis_socket}"
    assert namespace["REDIS"]["caching"]["URL"].startswith(f"unix://{paths.redis_socket}?db=")
    assert namespace["ISOLATED_DEPLOYMENT"] is True and namespace["CENSUS_REPORTING_ENABLED"] is False
    assert namespace["API_TOKEN_PEPPERS"] == {1: "p" * 64} and namespace["SECRET_KEY"] == "k" * 64


def test_secrets_are_made_once_private_and_long_enough(tmp_path):
    paths = paths_in(tmp_path)
    os.makedirs(paths.base)
    first = script.secrets_of(paths)
    assert script.secrets_of(paths) == first
    assert os.stat(paths.secrets).st_mode & 0o777 == 0o600
    assert all(len(value) >= 50 for value in first.values())  # NetBox refuses a shorter key or pepper


# ---------------------------------------------------------------- failures are one line with advice that works

def test_missing_programs_are_one_line_with_the_apt_get_command(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {"PATH": str(empty), "OSA_NETBOX_PG_BIN": str(tmp_path / "no-postgresql"),
           "OSA_NETBOX_PG_USER": "no-such-user-osa"}
    result = run(tmp_path / "home", "start", env=env)
    assert result.returncode == 1
    line = one_line(result)
    assert "redis-server" in line and "PostgreSQL" in line and "gcc" in line and "pg_config" in line
    advice = line.split("install with: ", 1)[1]
    packages = shlex.split(advice)[2:]
    expected = ["postgresql", "redis-server", "gcc", "libpq-dev"]
    assert shlex.split(advice)[:2] == ["apt-get", "install"] and sorted(packages) == sorted(expected)
    state = json.loads(open(paths_in(tmp_path / "home").state).read())
    assert state["status"] == "failed" and state["reason"] == line.split(": ", 1)[1]
    # The advice names real packages: apt-get resolves them (simulated, nothing installed).
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("running apt-get's advice needs root and apt-get")
    simulated = subprocess.run([*shlex.split(advice), "--simulate"], capture_output=True, text=True, timeout=300)
    assert simulated.returncode == 0, simulated.stderr


def test_a_background_start_that_cannot_start_fails_at_once_and_the_fixture_skips_with_the_reason(tmp_path):
    env = {"OSA_NETBOX_PG_BIN": str(tmp_path / "no-postgresql")}
    started = time.monotonic()
    result = run(tmp_path / "home", "start", "--background", env=env)
    assert result.returncode == 1 and time.monotonic() - started < 60
    line = one_line(result)
    assert "apt-get install postgresql" in line
    with pytest.raises(NetBoxUnavailable) as caught:
        wait_for_state(paths_in(tmp_path / "home").state, timeout=5)
    assert str(caught.value) == f"NetBox failed to start: {line.split(': ', 1)[1]}"


def test_a_folder_postgresql_cannot_enter_is_named_with_a_working_chmod():
    if os.geteuid() != 0:
        pytest.skip("PostgreSQL runs as another user only when the script runs as root")
    try:
        pg_user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user (apt-get install postgresql)")
    # Directly below /tmp: pytest's own temporary folders are private to root, all of them.
    private = tempfile.mkdtemp(prefix="osa-netbox-private-", dir="/tmp")  # mode 0700, as mktemp -d makes it
    try:
        paths = paths_in(os.path.join(private, "home"))
        os.makedirs(paths.base, mode=0o755)
        os.chmod(os.path.dirname(paths.base), 0o755)
        tools = type("Tools", (), {"pg_user": pg_user, "as_pg_user": script.Tools.as_pg_user})()
        with pytest.raises(script.ServerError) as caught:
            script.check_reachable(paths, tools)
        message = str(caught.value)
        assert f"cannot enter {private};" in message
        command = message.split("(", 1)[1].split(")", 1)[0]
        assert command == f"chmod o+x {private}"
        subprocess.run(shlex.split(command), check=True)
        script.check_reachable(paths, tools)  # passes now
    finally:
        shutil.rmtree(private)


def test_status_without_a_server_says_so_with_exit_status_3(tmp_path):
    result = run(tmp_path, "status")
    assert result.returncode == 3
    assert result.stdout.startswith("NetBox is not running") and result.stderr == ""


def test_status_tells_a_start_under_way_from_one_that_died(tmp_path):
    starter = sleeper()
    try:
        write_state(tmp_path, status="starting", pids={"starter": script.record(starter.pid)})
        result = run(tmp_path, "status")
        assert (result.returncode, result.stdout.split(";")[0]) == (4, "NetBox is starting")
    finally:
        starter.kill()
        starter.wait()
    result = run(tmp_path, "status")  # the same state, its starter gone
    assert result.returncode == 3 and result.stdout.startswith("NetBox is not running")


@pytest.mark.parametrize("damage", ["garbage", "list", "deep", "huge", "link", "fifo"])
def test_a_damaged_or_hostile_state_file_is_one_line(tmp_path, damage):
    paths = paths_in(tmp_path)
    os.makedirs(paths.base)
    if damage == "garbage":
        open(paths.state, "w").write("{not json")
    elif damage == "list":
        open(paths.state, "w").write("[]")
    elif damage == "deep":
        open(paths.state, "w").write("[" * 5000 + "]" * 5000)
    elif damage == "huge":
        with open(paths.state, "w") as fh:
            fh.truncate(64 * 1024 * 1024)
    elif damage == "link":
        target = tmp_path / "elsewhere.json"
        target.write_text('{"status": "ready"}')
        os.symlink(target, paths.state)
    else:
        os.mkfifo(paths.state)
    for command in ("status", "stop", "start"):
        result = run(tmp_path, command, timeout=60)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        line = one_line(result)
        assert paths.state in line and line.endswith("remove it and run the command again")
    os.unlink(paths.state)  # the advice
    assert run(tmp_path, "status").returncode == 3


# ---------------------------------------------------------------- stopping

def test_stop_signals_only_recorded_processes_and_never_a_reused_pid(tmp_path):
    bystander = sleeper()
    try:
        start_time = script.process_start_time(bystander.pid)
        # Same pid, another start time: a process that took a dead server's pid.
        paths = write_state(tmp_path, status="ready",
                            pids={"gunicorn": {"pid": bystander.pid, "start_time": start_time + 1}})
        result = run(tmp_path, "stop")
        assert result.returncode == 0 and "nothing was running" in result.stdout
        assert bystander.poll() is None
        write_state(tmp_path, status="ready", pids={"redis": {"pid": bystander.pid, "start_time": start_time}})
        result = run(tmp_path, "stop")
        assert result.returncode == 0 and "(redis)" in result.stdout
        assert bystander.wait(timeout=10) == -signal.SIGTERM
        assert json.loads(open(paths.state).read())["status"] == "stopped"
    finally:
        bystander.kill()
        bystander.wait()


def test_stop_interrupts_a_start_still_under_way(tmp_path):
    paths = paths_in(tmp_path)
    os.makedirs(paths.base)
    # A stand-in for an unfinished start: it holds the folder's lock until SIGTERM.
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, signal, sys, time
        fd = os.open({paths.start_lock!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))
        print("locked", flush=True)
        time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        write_state(tmp_path, status="starting", pids={"starter": script.record(holder.pid)})
        result = run(tmp_path, "stop", timeout=90)
        assert result.returncode == 0, result.stderr
        assert holder.wait(timeout=10) == 7  # it was asked to stop, and its lock passed to stop
        assert json.loads(open(paths.state).read())["status"] == "stopped"
    finally:
        holder.kill()
        holder.wait()


def test_stop_if_unused_leaves_a_server_another_session_holds_or_a_person_started(tmp_path):
    server = sleeper()
    try:
        rec = script.record(server.pid)
        paths = write_state(tmp_path, status="ready", for_tests=True, pids={"gunicorn": rec})
        lease = os.open(paths.users_lock, os.O_RDWR | os.O_CREAT)
        fcntl.flock(lease, fcntl.LOCK_SH)  # another test session uses it
        result = run(tmp_path, "stop", "--if-unused")
        assert "another test session uses it" in result.stdout and server.poll() is None
        os.close(lease)
        write_state(tmp_path, status="ready", for_tests=False, pids={"gunicorn": rec})
        result = run(tmp_path, "stop", "--if-unused")
        assert "not started by a test session" in result.stdout and server.poll() is None
        write_state(tmp_path, status="ready", for_tests=True, pids={"gunicorn": rec})
        result = run(tmp_path, "stop", "--if-unused")
        assert result.returncode == 0 and "(gunicorn)" in result.stdout
        assert server.wait(timeout=10) == -signal.SIGINT  # gunicorn's quick shutdown
    finally:
        server.kill()
        server.wait()


# ---------------------------------------------------------------- how the fixture waits

class FakeTime:
    def __init__(self, on_sleep=None):
        self.now = 0.0
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(self.now)


def test_the_fixture_waits_for_a_start_under_way_until_it_is_ready(tmp_path):
    state = tmp_path / "state.json"
    me = script.record(os.getpid())
    state.write_text(json.dumps({"status": "starting", "pids": {"starter": me}}))

    def progress(now: float) -> None:
        if now >= 10:
            state.write_text(json.dumps({"status": "ready", "url": "http://127.0.0.1:1"}))

    fake = FakeTime(progress)
    got = wait_for_state(str(state), timeout=60, poll=2, clock=fake.clock, sleep=fake.sleep)
    assert got["url"] == "http://127.0.0.1:1" and fake.now == 10


def test_the_fixture_waits_a_bounded_time_for_a_state_file_to_appear(tmp_path):
    fake = FakeTime()
    with pytest.raises(NetBoxUnavailable) as caught:
        wait_for_state(str(tmp_path / "state.json"), timeout=30, poll=2, clock=fake.clock, sleep=fake.sleep)
    assert "not ready after 30 s" in str(caught.value) and "does not exist" in str(caught.value)
    assert "OSA_TEST_NETBOX_WAIT" in str(caught.value) and 30 <= fake.now <= 32


def test_the_fixture_stops_waiting_when_the_start_died(tmp_path):
    dead = sleeper()
    rec = script.record(dead.pid)
    dead.kill()
    dead.wait()
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"status": "starting", "pids": {"starter": rec}}))
    fake = FakeTime()
    with pytest.raises(NetBoxUnavailable) as caught:
        wait_for_state(str(state), timeout=600, clock=fake.clock, sleep=fake.sleep)
    assert f"(pid {rec['pid']}) died" in str(caught.value) and fake.now == 0


@pytest.mark.parametrize("content", ["{", "[1]"])
def test_the_fixture_names_a_damaged_state_file(tmp_path, content):
    state = tmp_path / "state.json"
    state.write_text(content)
    with pytest.raises(NetBoxUnavailable) as caught:
        wait_for_state(str(state), timeout=0)
    assert str(state) in str(caught.value)


# ---------------------------------------------------------------- with the real server

def _env_of(netbox) -> tuple[str, dict]:
    state = json.loads(open(netbox.state_file).read())
    return state["home"], state


def test_status_and_a_second_start_find_the_running_server(netbox):
    home, state = _env_of(netbox)
    status = run(home, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"ready at {netbox.url}" in status.stdout
    again = run(home, "start", *(["--for-tests"] if state.get("for_tests") else []), timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"ready at {netbox.url}" in again.stdout
    after = json.loads(open(netbox.state_file).read())
    assert after["pids"] == state["pids"]  # nothing restarted
    assert all(script.alive(rec) for rec in after["pids"].values())


def test_the_server_listens_on_loopback_only_and_runs_postgresql_as_another_user(netbox):
    _, state = _env_of(netbox)
    assert netbox.url.startswith("http://127.0.0.1:")
    postgres = state["pids"]["postgres"]["pid"]
    with open(f"/proc/{postgres}/status") as fh:
        uid = int(next(line for line in fh if line.startswith("Uid:")).split()[1])
    if os.geteuid() == 0:
        assert uid != 0  # PostgreSQL refuses root: it runs as its own user
    listening = open("/proc/net/tcp").read().splitlines()[1:] + open("/proc/net/tcp6").read().splitlines()[1:]
    inode_of = {}
    for line in listening:
        fields = line.split()
        if fields[3] == "0A":  # LISTEN
            inode_of[fields[9]] = fields[1]
    for name in ("postgres", "redis", "gunicorn"):
        pid = state["pids"][name]["pid"]
        sockets = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                   if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")}
        addresses = [inode_of[i] for i in sockets if i in inode_of]
        if name == "gunicorn":
            assert addresses and all(a.startswith("0100007F:") for a in addresses), addresses
        else:
            assert addresses == [], (name, addresses)  # unix sockets only


def test_an_idle_kept_alive_connection_stays_open_well_past_gunicorns_two_seconds(netbox):
    """gunicorn's default closes an idle connection after 2 s; a client reusing it at that moment (a loaded
    CI machine) had a DELETE reset mid-test. The server must keep it for longer than any pause in a test."""
    import http.client
    host, port = netbox.url[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": f"Bearer {netbox.read_token}", "Accept": "application/json"}
    try:
        conn.request("GET", "/api/status/", headers=headers)
        first = conn.getresponse()
        assert first.status == 200 and first.getheader("Connection", "").lower() != "close"
        first.read()
        sock = conn.sock
        time.sleep(5)
        conn.request("GET", "/api/status/", headers=headers)
        second = conn.getresponse()
        second.read()
        assert second.status == 200
        assert conn.sock is sock  # the same connection: http.client never reconnects on its own
    finally:
        conn.close()


def test_reset_restores_the_migrated_database_and_the_tokens_still_work(netbox, netbox_objects):
    if netbox.lease_fd is None:
        pytest.skip("the server is shared (OSA_TEST_NETBOX, as in CI): a reset would delete the objects of "
                    "other sessions' tests; run with OSA_TEST_NETBOX_START=1 to test it")
    try:  # exclusive while it resets: no other session's tests run against it meanwhile
        fcntl.flock(netbox.lease_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fcntl.flock(netbox.lease_fd, fcntl.LOCK_SH)
        pytest.skip("another test session uses this server: a reset would delete its objects")
    try:
        home, _ = _env_of(netbox)
        site = netbox_objects.site()
        client = netbox.client()
        result = run(home, "reset")
        assert result.returncode == 0, result.stderr
        assert client.get(f"dcim/sites/{site['id']}/").status_code == 404
        assert netbox.reader().get("dcim/sites/").status_code == 200
        assert client.get("users/users/").json()["count"] == 2  # admin and reader, as migrated
        netbox_objects.site("after")  # the dropped connections were replaced: writes work at once
    finally:
        fcntl.flock(netbox.lease_fd, fcntl.LOCK_SH)
