"""A server that answers with an endless (or announced huge) body cannot exhaust our memory.

The etcd gateway client and the Craton client read every answer through
backends/http_answer.py: at most a bound, refused in one line naming the URL
and the bound, the connection closed. The hostile server here is a real HTTP
server on 127.0.0.1 that sends JSON-looking bytes without end (well, up to a
cap far past the bound, so a client without the bound fails the assertions
instead of hanging the suite).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from craton_server import craton_server  # noqa: F401  (the fixture)
from etcd_server import etcd  # noqa: F401  (the fixture)
from test_craton_plugin import PLUGIN as CRATON_PLUGIN
from test_etcd_plugin import open_etcd

from osa_inventory.backends.craton.client import CratonClient, CratonError
from osa_inventory.backends.etcd.client import EtcdClient, EtcdRequestError
from osa_inventory.backends.http_answer import MAX_ANSWER_BYTES
from osa_inventory.bounded import MiB
from osa_inventory.errors import StorageError

SMALL_BOUND = 1 * MiB
CAP = 64 * MiB              # what the "endless" body sends at most: 64 times the small bound
PIECE = b'"' + b"x" * 65534 + b'",'


class HostileServer:
    """Answers every request 200 with a body that never ends (``announce``: with a huge Content-Length)."""

    def __init__(self, announce: int | None = None):
        self.announce = announce
        self.sent = 0                 # body bytes written, over all answers
        self.hung_up = threading.Event()  # the client closed a connection while the body was being sent
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection does: no length, no chunks

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if outer.announce is not None:
                    self.send_header("Content-Length", str(outer.announce))
                self.end_headers()
                try:
                    self.wfile.write(b'{"kvs": [')
                    while outer.sent < CAP:
                        self.wfile.write(PIECE)
                        outer.sent += len(PIECE)
                    self.wfile.write(b'""]}')
                except (BrokenPipeError, ConnectionResetError):
                    outer.hung_up.set()

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def one_line_refusal(message: str, request: str, bound_mib: int) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert f"the answer to {request} is larger than {bound_mib} MiB" in message, message


# -- the clients, with a small bound so the test holds little memory ---------------------------------

def test_etcd_client_stops_reading_an_endless_answer_at_the_bound():
    with HostileServer() as server:
        client = EtcdClient([server.url], 10.0)
        client.max_answer = SMALL_BOUND
        with pytest.raises(EtcdRequestError) as refused:
            client.range(b"/any")
        one_line_refusal(str(refused.value), f"POST {server.url}/v3/kv/range", 1)
        assert "(it sent more)" in str(refused.value)
        assert "check that the endpoints option names etcd client URLs" in str(refused.value)
        assert server.hung_up.wait(10), "the client kept the connection open after refusing the answer"
        # Socket buffers hold a few MiB in flight; without the bound all CAP bytes would have gone out.
        assert server.sent < CAP
        assert client.request_count == 1, "a refused answer was asked again (of the same hostile server)"


def test_craton_client_stops_reading_an_endless_answer_at_the_bound():
    with HostileServer() as server:
        client = CratonClient(server.url, {"X-Auth-Token": "t"}, "the token", timeout=10.0, retries=0)
        client.max_answer = SMALL_BOUND
        with pytest.raises(CratonError) as refused:
            client.get("/regions")
        one_line_refusal(str(refused.value), f"GET {server.url}/v1/regions", 1)
        assert "check that [craton] url points at the Craton API" in str(refused.value)
        assert server.hung_up.wait(10), "the client kept the connection open after refusing the answer"
        assert server.sent < CAP


# -- the backends as the program opens them, with the real bound --------------------------------------

def test_etcd_backend_refuses_an_announced_huge_answer_and_the_advice_works(etcd, tmp_path):  # noqa: F811
    with HostileServer(announce=MAX_ANSWER_BYTES + 1) as server:
        backend = open_etcd(server.url, "/bound-test")
        with pytest.raises(StorageError) as refused:
            backend.load()
        message = str(refused.value)
        one_line_refusal(message, f"POST {server.url}/v3/kv/range", MAX_ANSWER_BYTES // MiB)
        assert f"(it announced {MAX_ANSWER_BYTES + 1} bytes)" in message
        assert server.sent < CAP  # refused on the header, not after reading
        assert "check that the endpoints option names etcd client URLs" in message
    # The advice, followed: the endpoints option names the etcd member.
    assert open_etcd(etcd.endpoints_text, "/bound-test").load() is None


def test_craton_backend_refuses_an_announced_huge_answer_and_the_advice_works(craton_server, tmp_path):  # noqa: F811
    with HostileServer(announce=MAX_ANSWER_BYTES + 1) as server:
        storage = CRATON_PLUGIN.Storage()
        storage.register({**craton_server.options(url=server.url, retries="0"), "config_dir": str(tmp_path)})
        with pytest.raises(StorageError) as refused:
            storage.load()
        message = str(refused.value)
        one_line_refusal(message, f"GET {server.url}/v1/clouds", MAX_ANSWER_BYTES // MiB)
        assert f"(it announced {MAX_ANSWER_BYTES + 1} bytes)" in message
        assert server.sent < CAP
        assert "check that [craton] url points at the Craton API" in message
    # The advice, followed: url points at the Craton API.
    fixed = CRATON_PLUGIN.Storage()
    fixed.register({**craton_server.options(), "config_dir": str(tmp_path)})
    assert fixed.load() is None
