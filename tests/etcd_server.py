"""Real etcd servers for tests and benchmarks, and OSA-shaped sample inventories.

``EtcdMember`` runs one ``/usr/bin/etcd`` on 127.0.0.1 with free ports and a
temporary data folder (on /dev/shm when there is one, so fsyncs are cheap);
``EtcdCluster`` runs one or three of them as one cluster. Both stop their
processes and remove their folders on ``stop()``, at interpreter exit, and
(through PR_SET_PDEATHSIG) when the process that started them dies.

``build_inventory`` makes inventories shaped like OpenStack-Ansible's.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from typing import Iterable

import pytest
import requests

ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
_LIVE: set[EtcdMember] = set()


def etcd_available() -> bool:
    return os.access(ETCD_BIN, os.X_OK)


def skip_without_etcd() -> None:
    """pytest.skip when there is no etcd binary (CI installs the etcd-server package)."""
    if not etcd_available():
        import pytest
        pytest.skip(f"{ETCD_BIN} is absent; install it with 'apt-get install etcd-server'")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the test process is killed, etcd goes too.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _scratch_root() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


class EtcdMember:
    """One etcd process on loopback."""

    def __init__(self, name: str, cluster_token: str, folder: str, extra_args: Iterable[str] = (),
                 tls: dict[str, str] | None = None):
        self.name = name
        # tls: {"ca", "server_cert", "server_key", "client_cert", "client_key"} file paths
        # (tests tls_certs.make_pki makes them); the member then serves https and demands
        # client certificates.
        self.tls = tls
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data_dir = os.path.join(folder, name)
        self.log_path = os.path.join(folder, f"{name}.log")
        self.cluster_token = cluster_token
        self.extra_args = list(extra_args)
        self.initial_cluster = ""
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    @property
    def http_options(self) -> dict:
        """requests keyword arguments that reach this member (TLS files when it has TLS)."""
        if not self.tls:
            return {}
        # tls["verify"], when given, is the CA the test side trusts instead of tls["ca"].
        return {"verify": self.tls.get("verify", self.tls["ca"]),
                "cert": (self.tls["client_cert"], self.tls["client_key"])}

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def command(self) -> list[str]:
        return [
            ETCD_BIN, "--name", self.name, "--data-dir", self.data_dir,
            "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster, "--initial-cluster-token", self.cluster_token,
            "--initial-cluster-state", "new",
            # Short timings so a stopped leader is replaced within a second.
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--logger", "zap", "--log-outputs", self.log_path, "--log-level", "warn",
            *self._tls_args(), *self.extra_args,
        ]

    def _tls_args(self) -> list[str]:
        if not self.tls:
            return []
        return ["--cert-file", self.tls["server_cert"], "--key-file", self.tls["server_key"],
                "--client-cert-auth", "--trusted-ca-file", self.tls["ca"]]

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        _LIVE.add(self)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s); the data folder stays."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _LIVE.discard(self)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        return self.probe()[0]

    def probe(self) -> tuple[bool, str]:
        """(healthy, why not): one /health request; a TLS failure's reason starts with "TLS"."""
        try:
            resp = requests.get(self.endpoint + "/health", timeout=1, **self.http_options)
        except requests.exceptions.SSLError as exc:
            return False, f"TLS failure: {_innermost(exc)}"
        except requests.RequestException as exc:
            return False, f"{type(exc).__name__}: {_innermost(exc)}"
        try:
            health = resp.json().get("health")
        except (ValueError, AttributeError):
            return False, f"HTTP {resp.status_code} without a JSON object"
        return (True, "") if resp.status_code == 200 and health == "true" else \
            (False, f"HTTP {resp.status_code}, health {health!r}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except OSError:
            return "(no log)"


class EtcdCluster:
    """One or more members forming one cluster; use as a context manager or call stop()."""

    def __init__(self, size: int = 1, extra_args: Iterable[str] = (), tls: dict[str, str] | None = None,
                 root: str | None = None):
        self.folder = tempfile.mkdtemp(prefix="osa-etcd-", dir=root or _scratch_root())
        token = f"osa-test-{uuid.uuid4().hex[:12]}"
        self.members = [EtcdMember(f"m{i}", token, self.folder, extra_args, tls) for i in range(size)]
        self._set_initial_cluster()

    def _set_initial_cluster(self) -> None:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for member in self.members:
            member.initial_cluster = initial

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    @property
    def endpoints_text(self) -> str:
        return ",".join(self.endpoints)

    def start(self, timeout: float = 30.0) -> EtcdCluster:
        """Start every member and wait until all are healthy.

        A port picked by free_port() can be taken by someone else before etcd binds it;
        then the cluster is set up again on new ports (up to three times). Any other
        failure is raised at once with its real cause."""
        for attempt in range(3):
            for member in self.members:
                member.start()
            try:
                # Every member, not only the running ones: a member that already
                # exited (its port was taken) must be seen as exited, not skipped.
                self.wait_healthy(timeout, self.members)
                return self
            except PortTaken:
                for member in self.members:
                    member.kill()
                if attempt == 2:
                    raise
                for member in self.members:
                    shutil.rmtree(member.data_dir, ignore_errors=True)
                    member.client_port, member.peer_port = free_port(), free_port()
                self._set_initial_cluster()
            except BaseException:
                for member in self.members:
                    member.kill()
                raise
        return self

    def wait_healthy(self, timeout: float = 30.0, members: Iterable[EtcdMember] | None = None) -> None:
        """Wait until every running member (or those given) answers /health with true.

        Raises PortTaken when a member exited because its port was in use, and
        RuntimeError naming the cause when a member exited otherwise, when the
        connection fails for a reason waiting cannot cure (TLS), or at ``timeout``."""
        waiting = list(members) if members is not None else [m for m in self.members if m.running()]
        last: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while waiting:
            for member in list(waiting):
                _raise_if_exited(member)
                healthy, why = member.probe()
                if healthy:
                    waiting.remove(member)
                elif why.startswith("TLS"):
                    # Unless our etcd lost its port and someone else answered there, waiting
                    # will not help: give it a moment to exit, then say what failed.
                    _raise_if_exited(member, grace=1.0)
                    raise RuntimeError(f"etcd {member.name} at {member.endpoint}: {why}")
                else:
                    last[member.name] = why
            if waiting and time.monotonic() > deadline:
                name = waiting[0].name
                raise RuntimeError(f"etcd {name} not healthy after {timeout} s (last answer: "
                                   f"{last.get(name, 'none')}):\n{waiting[0].log_tail()}")
            if waiting:
                time.sleep(0.05)

    def restart(self, member: EtcdMember | None = None, timeout: float = 30.0) -> None:
        member = member or self.members[0]
        member.stop()
        member.start()
        self.wait_healthy(timeout, [member])

    def stop(self) -> None:
        """Stop every member and remove the data folders."""
        for member in self.members:
            member.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- direct gateway calls for test setup ---------------------------------

    def post(self, path: str, body: dict, token: str | None = None, member: EtcdMember | None = None) -> dict:
        """One gateway call to a running member; raises on an error answer."""
        member = member or next(m for m in self.members if m.running())
        headers = {"Authorization": token} if token else {}
        resp = requests.post(member.endpoint + path, json=body, headers=headers, timeout=10, **member.http_options)
        data = resp.json()
        if resp.status_code != 200 or "error" in data:
            raise RuntimeError(f"{path} failed: {data}")
        return data

    def enable_auth(self, root_password: str, users: dict[str, tuple[str, str]]) -> None:
        """Create root and ``users`` ({name: (password, key prefix)}, each with a read-write
        role on its prefix), then turn authentication on."""
        self.post("/v3/auth/user/add", {"name": "root", "password": root_password})
        self.post("/v3/auth/user/grant", {"user": "root", "role": "root"})
        for name, (password, prefix) in users.items():
            key = prefix.encode()
            end = bytearray(key)
            end[-1] += 1
            self.post("/v3/auth/role/add", {"name": f"{name}-role"})
            self.post("/v3/auth/role/grant", {"name": f"{name}-role", "perm": {
                "permType": "READWRITE", "key": _b64(key), "range_end": _b64(bytes(end))}})
            self.post("/v3/auth/user/add", {"name": name, "password": password})
            self.post("/v3/auth/user/grant", {"user": name, "role": f"{name}-role"})
        self.post("/v3/auth/enable", {})

    def keys(self, prefix: str, token: str | None = None) -> dict[bytes, dict]:
        """Every key under ``prefix`` now: {key: {mod_revision, create_revision, size}}."""
        key = prefix.encode()
        end = bytearray(key)
        end[-1] += 1
        data = self.post("/v3/kv/range", {"key": _b64(key), "range_end": _b64(bytes(end))}, token)
        return {base64.b64decode(kv["key"]): {"mod_revision": int(kv["mod_revision"]),
                                             "create_revision": int(kv["create_revision"]),
                                             "size": len(base64.b64decode(kv.get("value", "")))}
                for kv in data.get("kvs", [])}

    def revision(self) -> int:
        data = self.post("/v3/kv/range", {"key": _b64(b"\0")})
        return int(data["header"]["revision"])


class PortTaken(RuntimeError):
    """An etcd member could not bind a port that free_port() had picked."""


def _raise_if_exited(member: EtcdMember, grace: float = 0.0) -> None:
    """PortTaken or RuntimeError (with its log) when ``member``'s process has exited,
    waiting up to ``grace`` seconds for that."""
    if member.proc is None:
        return
    try:
        member.proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        return
    log = member.log_tail()
    error = PortTaken if "address already in use" in log else RuntimeError
    raise error(f"etcd {member.name} exited with {member.proc.returncode}:\n{log}")


def _innermost(exc: BaseException) -> str:
    """The message of the deepest cause under a requests error (the ssl or socket error)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nested = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__ or \
            next((a for a in exc.args if isinstance(a, BaseException)), None)
        if not isinstance(nested, BaseException):
            break
        exc = nested
    return " ".join(str(exc).split())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@atexit.register
def _stop_all() -> None:
    for member in list(_LIVE):
        member.kill()


# -- sample inventories --------------------------------------------------------

SERVICES = {
    # container type -> (components, host group feeding it)
    "galera_container": (["galera"], "shared-infra_hosts"),
    "rabbit_mq_container": (["rabbitmq"], "shared-infra_hosts"),
    "memcached_container": (["memcached"], "shared-infra_hosts"),
    "keystone_container": (["keystone"], "identity_hosts"),
    "nova_api_container": (["nova_api_metadata", "nova_api_os_compute", "nova_conductor",
                            "nova_scheduler"], "compute-infra_hosts"),
    "neutron_server_container": (["neutron_server"], "network_hosts"),
    "glance_container": (["glance_api"], "image_hosts"),
    "utility_container": (["utility"], "shared-infra_hosts"),
}


def build_inventory(computes: int, infra: int = 3, *, seed: int = 0, extra_vars: dict | None = None) -> dict:
    """An OSA-shaped inventory: ``infra`` infra hosts with service containers, ``computes``
    metal compute hosts, groups with children, empty groups, all.vars with nested and
    non-ASCII values. Same arguments, same inventory."""
    hostvars: dict[str, dict] = {}
    groups: dict[str, dict] = {}

    def group(name: str, children: bool = True) -> dict:
        return groups.setdefault(name, {"children": [], "hosts": []} if children else {"hosts": []})

    def add_host(name: str, ip: str, physical: str, host_group: str, component: str | None,
                 metal: bool, container: str | None) -> None:
        hostvars[name] = {
            "ansible_host": ip, "management_address": ip, "container_name": name,
            "physical_host": physical, "physical_host_addr": ip if metal else f"172.29.236.{10 + seed % 200}",
            "physical_host_group": host_group, "component": component, "container_tech": "lxc",
            "properties": {"is_metal": metal, "service_name": (component or "host").split("_")[0]},
            "container_networks": {
                "management_address": {"address": ip, "bridge": "br-mgmt", "interface": "eth1",
                                        "netmask": "255.255.252.0", "type": "veth", "mtu": 1500},
                "tunnel_address": {"address": _ip(172, 29, 240, len(hostvars) + seed),
                                   "bridge": "br-vxlan", "type": "raw"},
            },
            "is_metal": metal,
        }
        if container:
            hostvars[name]["container_types"] = container

    for container in SERVICES:
        group(container, children=False)
        base = container[:-len("_container")]
        group(f"{base}_containers")["children"].append(container)
        group(f"{base}_all")["children"].append(f"{base}_containers")
    for comps, _ in SERVICES.values():
        for comp in comps:
            group(comp)
    for i in range(infra):
        host = f"infra{i + 1}"
        ip = _ip(172, 29, 236, 11 + i)
        for hg in sorted({hg for _, hg in SERVICES.values()}):
            group(hg.replace("-", "_"))["hosts"].append(host)
        add_host(host, ip, host, "shared-infra_hosts", None, True, None)
        group(f"{host}_host_containers")
        group("all_containers")
        for n, (container, (comps, hg)) in enumerate(SERVICES.items()):
            suffix = f"{(i * 131 + n * 17 + seed) & 0xffffffff:08x}"
            cname = f"{host}-{container.replace('_', '-')}-{suffix}"
            add_host(cname, _ip(172, 29, 237, i * 16 + n + 1), host, hg, comps[0], False, container)
            group(container, children=False)["hosts"].append(cname)
            group(f"{host}_host_containers")["hosts"].append(cname)
            for comp in comps:
                group(comp)["hosts"].append(cname)
    for i in range(computes):
        host = f"compute{i + 1:04d}"
        ip = _ip(172, 29, 244, 1 + i)
        add_host(host, ip, host, "compute_hosts", "nova_compute", True, None)
        group("compute_hosts")["hosts"].append(host)
        group("nova_compute")["hosts"].append(host)
        if i % 7 == 0:
            hostvars[host]["nova_cpu_allocation_ratio"] = 4.0
            hostvars[host]["host_notes"] = "Rack 7 – Ünïcödé ✓ 机架"
    group("hosts")["children"].extend(sorted(g for g in groups if g.endswith("_hosts")))
    group("all_containers")["children"].extend(sorted(g for g in groups if g.endswith("_containers")
                                                      and g != "all_containers"))
    group("lxc_hosts")["hosts"].extend(f"infra{i + 1}" for i in range(infra))
    group("unbound_containers")  # an empty skeleton group
    group("ironic_all")
    all_vars = {
        "container_cidr": "172.29.236.0/22",
        "internal_lb_vip_address": "172.29.236.9",
        "external_lb_vip_address": "openstack.example.com",
        "openstack_domain": "exämple.org",
        "provider_networks": [
            {"network": {"container_bridge": "br-mgmt", "container_type": "veth", "ip_from_q": "container",
                         "group_binds": ["all_containers", "hosts"], "is_management_address": True}},
            {"network": {"container_bridge": "br-vxlan", "ip_from_q": "tunnel", "range": "1:1000",
                         "group_binds": ["neutron_linuxbridge_agent"], "net_name": "vxlan"}},
        ],
        "templated": "{{ hostvars[inventory_hostname]['ansible_host'] }}",
        "nested": {"a": {"b": [1, 2.5, None, True, {"c": "ü"}]}},
        "seed": seed,
    }
    if extra_vars:
        all_vars.update(extra_vars)
    inventory = {"_meta": {"hostvars": hostvars}, "all": {"vars": all_vars}}
    inventory.update(groups)
    return inventory


def _ip(a: int, b: int, c: int, d: int) -> str:
    c += d // 254
    d = d % 254 + 1
    return f"{a}.{b}.{c % 256}.{d}"


@pytest.fixture(scope="module")
def etcd():
    """One real etcd member on a free loopback port, shared by a test module."""
    skip_without_etcd()
    cluster = EtcdCluster(1).start()
    yield cluster
    cluster.stop()
