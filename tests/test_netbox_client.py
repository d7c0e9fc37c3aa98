"""The NetBox HTTP client against hostile or flaky servers of its own (no NetBox needed): answers past
the size bound, a kept-alive connection the server closed, timeouts, and what is retried: an idempotent
request once on a dropped kept-alive connection, and any request (a POST too) only on the 500 with which
NetBox reports a deadlock PostgreSQL rolled back, at most DEADLOCK_RETRIES times.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from osa_inventory.backends.netbox.client import (DEADLOCK_RETRIES, NetBoxClient, NetBoxError, batches,
                                                  rolled_back_deadlock)

TOKEN = "nbt_abcdefghijkl.0123456789abcdef0123456789abcdef01234567"


class RawServer:
    """A loopback HTTP server answering each request with ``script(n, request)`` (bytes, or None to
    close the connection without answering); it keeps connections alive. ``requests`` holds each
    request's line, ``bodies`` its body."""

    def __init__(self, script):
        self.script = script
        self.requests: list[bytes] = []
        self.bodies: list[bytes] = []
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
                self.bodies.append(rest[:length])
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


def answer_500(body: bytes, content_type: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        content_type, len(body), body)


def netbox_500(error: str, exception: str) -> bytes:
    """A 500 as NetBox's REST API error handler writes it (utilities/error_handlers.py in NetBox 4.7)."""
    return answer_500(json.dumps({"error": error, "exception": exception, "netbox_version": "4.7.3",
                                  "python_version": "3.12.13"}).encode())


#: What NetBox 4.7.3 answers a request PostgreSQL chose as a deadlock's victim: Django wraps psycopg's
#: DeadlockDetected in django.db.utils.OperationalError, whose text is PostgreSQL's message.
DEADLOCK_TEXT = ("deadlock detected\nDETAIL:  Process 4242 waits for ShareLock on transaction 1001; blocked by "
                 "process 4243.\nProcess 4243 waits for ShareLock on transaction 1000; blocked by process 4242.\n"
                 "HINT:  See server log for query details.")


def deadlock() -> bytes:
    return netbox_500(DEADLOCK_TEXT, "OperationalError")


BODY = [{"name": "x", "changelog_message": "osa-inventory #1"}]


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_a_deadlock_victim_is_sent_again_whatever_its_method(serve, method):
    # NetBox rolled the victim's transaction back: sending even a POST again creates nothing twice.
    server = serve(lambda n, head: deadlock() if n <= 2 else ok(b'[{"id": 1}]'))
    client = NetBoxClient(server.url, TOKEN, timeout=5)
    assert client.request(method, "dcim/devices/", body=BODY, expect=(200,)).data == [{"id": 1}]
    assert server.requests == [f"{method} /api/dcim/devices/ HTTP/1.1".encode()] * 3
    assert len(set(server.bodies)) == 1 and json.loads(server.bodies[0]) == BODY  # the same request again


def test_the_bare_psycopg_name_of_a_deadlock_is_believed_too(serve):
    server = serve(lambda n, head: netbox_500(DEADLOCK_TEXT, "DeadlockDetected") if n == 1 else ok(b"[]"))
    client = NetBoxClient(server.url, TOKEN, timeout=5)
    assert client.request("POST", "dcim/devices/", body=BODY, expect=(200,)).data == []
    assert len(server.requests) == 2


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_deadlocks_that_go_on_are_an_error_in_one_line(serve, method):
    server = serve(lambda n, head: deadlock())
    client = NetBoxClient(server.url, TOKEN, timeout=5)
    with pytest.raises(NetBoxError) as caught:
        client.request(method, "dcim/devices/", body=[{"id": 1}], expect=(204,))
    message = str(caught.value)
    assert len(server.requests) == 1 + DEADLOCK_RETRIES
    assert "\n" not in message and "deadlock detected" in message and caught.value.status == 500
    assert message.startswith(f"{method} {server.url}/api/dcim/devices/: NetBox server error 500")


# 500s that do not prove NetBox rolled the request back: a POST is sent once and the error reported.
NOT_A_ROLLED_BACK_DEADLOCK = {
    # The words inside another error's message (here a value of ours echoed back).
    "quoted": netbox_500("value too long for type character varying(200): 'deadlock detected'", "DataError"),
    # PostgreSQL's message, but another exception: not the database refusing a deadlock victim.
    "other exception": netbox_500(DEADLOCK_TEXT, "RuntimeError"),
    "no exception named": answer_500(json.dumps({"error": DEADLOCK_TEXT}).encode()),
    "not the first line": netbox_500("could not serialize access\ndeadlock detected", "OperationalError"),
    # Not NetBox's error handler: a proxy's or gunicorn's page.
    "html": answer_500(b"<html><body><h1>500</h1><p>deadlock detected</p></body></html>", b"text/html"),
    "json list": answer_500(b'["deadlock detected"]'),
    "wrong types": answer_500(b'{"error": ["deadlock detected"], "exception": "OperationalError"}'),
}


@pytest.mark.parametrize("name", sorted(NOT_A_ROLLED_BACK_DEADLOCK))
def test_a_500_that_does_not_prove_the_rollback_is_never_sent_again(serve, name):
    server = serve(lambda n, head: NOT_A_ROLLED_BACK_DEADLOCK[name] if n == 1 else ok(b"[]"))
    client = NetBoxClient(server.url, TOKEN, timeout=5)
    with pytest.raises(NetBoxError) as caught:
        client.request("POST", "virtualization/virtual-machines/", body=BODY, expect=(201,))
    assert len(server.requests) == 1, "a POST NetBox may have committed was sent again"
    message = str(caught.value)
    assert caught.value.status == 500 and "\n" not in message and "NetBox server error 500" in message


def test_a_deadlock_message_with_another_status_is_not_sent_again(serve):
    body = json.dumps({"error": DEADLOCK_TEXT, "exception": "OperationalError"}).encode()
    server = serve(lambda n, head: b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    client = NetBoxClient(server.url, TOKEN, timeout=5)
    with pytest.raises(NetBoxError) as caught:
        client.request("POST", "dcim/devices/", body=BODY, expect=(201,))
    assert len(server.requests) == 1 and caught.value.status == 400


@pytest.mark.parametrize(("data", "proves"), [
    ({"error": DEADLOCK_TEXT, "exception": "OperationalError"}, True),
    ({"error": "deadlock detected", "exception": "DeadlockDetected"}, True),
    ({"error": DEADLOCK_TEXT, "exception": "IntegrityError"}, False),
    ({"error": "Deadlock Detected", "exception": "OperationalError"}, False),
    ({"error": None, "exception": "OperationalError"}, False),
    ("deadlock detected", False),
    (None, False),
])
def test_what_proves_a_rolled_back_deadlock(data, proves):
    assert rolled_back_deadlock(data) is proves
