"""The body of an HTTP answer from a remote backend (etcd's gateway, Craton), read with a size bound.

``requests`` reads a whole body into memory before a caller sees it, so a
broken or hostile server that sends an endless body would exhaust the deploy
host's memory. The clients send their requests with ``stream=True`` and read
the body here: at most ``limit`` bytes, refused in one line naming the URL and
the bound (the connection is then closed, never reused with the rest unread).

``MAX_ANSWER_BYTES`` is far above any real answer: for the inventory of
bench/generate_bench.py's 3000 compute hosts (3058 hosts, 2.4 MB of JSON) the
largest answers measured are 2.0 MiB (a page of an etcd read) and 1.3 MiB
(Craton's answer to a PUT of the region variables); about 130 times below it.
"""

from __future__ import annotations

from typing import Callable

import requests

from ..bounded import MiB

MAX_ANSWER_BYTES = 256 * MiB
CHUNK_BYTES = 64 * 1024


def read_answer(response: requests.Response, *, limit: int, shown: str, advice: str,
                error: Callable[[str], Exception]) -> bytes:
    """The body of ``response`` (sent with ``stream=True``), at most ``limit`` bytes.

    Raises ``error(message)`` when the server announces or sends more; ``shown``
    names the request in that message (method and URL), ``advice`` ends it (which
    option names the server). Errors of the transfer
    itself (a dropped connection, a read timeout) pass through as ``requests``
    raises them.
    """
    announced = response.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > limit:
        response.close()
        raise error(_too_big(shown, limit, f"it announced {announced} bytes", advice))
    chunks = []
    size = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            response.close()  # the rest is never read: this connection cannot serve another request
            raise error(_too_big(shown, limit, "it sent more", advice))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_big(shown: str, limit: int, what: str, advice: str) -> str:
    return (f"the answer to {shown} is larger than {limit // MiB} MiB, the bound on any answer ({what}); "
            f"the rest was not read and no real answer comes near that size; {advice}")
