"""The NetBox HTTP client against hostile or flaky servers of its own (no NetBox needed): answers past
the size bound, a kept-alive connection the server closed, timeouts, and what is retried.
"""

from __future__ import annotations

import socket
import threading

import pytest

from osa_inventory.backends.netbox.client import NetBoxClient, NetBoxError, batches

TOKEN = "nbt_abcdefghijkl.0123456789abcdef0123456789abcdef01234567"


class RawServer:
    """A loopback HTTP server answering each request with ``script(n, request)`` (bytes, or None to
    close the connection without answering); it keeps connections alive."""

    def __init__(self, script):
        self.script = script
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        except OSError:
            pass  # the client gave up (a timeout test): nothing more to answer

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(rest) < length:
                    rest += conn.recv(65536)
                buffer = rest[length:]
                self.requests.append(head.split(b"\r\n")[0])
                answer = self.script(len(self.requests), head)
                if answer is None:
                    return  # closed without an answer, as a server does with an idle kept-alive connection
                conn.sendall(answer)

    def close(self) -> None:
        self.sock.close()


def ok(body: bytes = b'{"ok": true}') -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.fixture
def serve():
    servers = []

    def start(script):
        server = RawServer(script)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.close()


def test_an_idempotent_request_is_sent_again_once_when_a_kept_alive_connection_was_closed(serve):
    # The first request is answered; the second finds the connection closed; the retry gets an answer.
    server = serve(lambda n, head: None if n == 2 else ok())
    client = NetBoxClient(server.url, TOKEN, timeout=5)
    assert client.get("status/") == {"ok": True}
    assert client.get("status/") == {"ok": True}
    assert len(server.requests) == 3


def test_a_post_is_never_sent_twice(serve):
    server = serve(lambda n, head: None if n == 2 else ok())
    client = NetBoxClient(server.url, TOKEN, timeout=5)
    client.get("status/")
    with pytest.raises(NetBoxError) as caught:
        client.request("POST", "dcim/devices/", body=[{"name": "x"}], expect=(200,))
    assert len(server.requests) == 2
    message = str(caught.value)
    assert "\n" not in message and "dropped the connection" in message and "POST" in message


def test_a_second_drop_is_an_error_not_a_loop(serve):
    server = serve(lambda n, head: ok() if n == 1 else None)
    client = NetBoxClient(server.url, TOKEN, timeout=5)
    client.get("status/")
    with pytest.raises(NetBoxError):
        client.get("status/")
    assert len(server.requests) == 3  # the first, the dropped one, its one retry


def test_an_answer_past_the_bound_is_refused_naming_the_url(serve):
    big = b'{"x": "' + b"a" * 300_000 + b'"}'
    server = serve(lambda n, head: ok(big))
    client = NetBoxClient(server.url, TOKEN, timeout=5, max_answer=100_000)
    with pytest.raises(NetBoxError) as caught:
        client.get("dcim/devices/")
    message = str(caught.value)
    assert "\n" not in message and f"{server.url}/api/dcim/devices/" in message and "100000 bytes" in message


def test_a_server_that_never_answers_times_out_in_one_line(serve):
    hung = threading.Event()
    server = serve(lambda n, head: hung.wait(10) and None)
    client = NetBoxClient(server.url, TOKEN, timeout=0.5)
    with pytest.raises(NetBoxError) as caught:
        client.get("status/")
    hung.set()
    assert "did not answer" in str(caught.value) and "timeout" in str(caught.value)


def test_the_token_is_never_in_a_message(serve):
    server = serve(lambda n, head: b"HTTP/1.1 403 Forbidden\r\nContent-Length: 24\r\n\r\n"
                                   b'{"detail": "Invalid v2"}')
    client = NetBoxClient(server.url, TOKEN, timeout=5)
    with pytest.raises(NetBoxError) as caught:
        client.get("status/")
    assert TOKEN.split(".")[1] not in str(caught.value) and "Invalid v2" in str(caught.value)


def test_batches_stay_under_both_bounds():
    items = [{"name": f"h{i}", "pad": "x" * 1000} for i in range(2000)]
    cut = list(batches(items, max_items=500, max_bytes=100_000))
    assert [item for batch in cut for item in batch] == items
    assert all(len(batch) <= 500 for batch in cut) and all(len(str(batch)) < 110_000 for batch in cut)


def deadlock() -> bytes:
    body = b'{"error": "deadlock detected\\nDETAIL: Process 1 waits for ShareLock", "exception": "DeadlockDetected"}'
    return b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body), body)


def test_a_deadlock_victim_is_sent_again_whatever_its_method(serve):
    # NetBox rolled the victim's transaction back: sending a POST again creates nothing twice.
    server = serve(lambda n, head: deadlock() if n <= 2 else ok(b'[{"id": 1}]'))
    client = NetBoxClient(server.url, TOKEN, timeout=5)
    assert client.request("POST", "dcim/devices/", body=[{"name": "x"}], expect=(200,)).data == [{"id": 1}]
    assert len(server.requests) == 3


def test_deadlocks_that_go_on_are_an_error_in_one_line(serve):
    server = serve(lambda n, head: deadlock())
    client = NetBoxClient(server.url, TOKEN, timeout=5)
    with pytest.raises(NetBoxError) as caught:
        client.request("DELETE", "dcim/devices/", body=[{"id": 1}], expect=(204,))
    assert len(server.requests) == 4 and "\n" not in str(caught.value) and "deadlock" in str(caught.value)
