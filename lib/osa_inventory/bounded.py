"""Bounded reading of every file and JSON text the project parses.

One place decides what a readable input is, so no reader can hang, exhaust
memory or crash on a hostile or damaged file:

* only a regular file is read: a FIFO would block for ever, ``/dev/zero``
  never ends, a folder cannot be read; each is refused by name;
* it is opened without blocking (a FIFO planted in a file's place cannot
  stall the open) and, where the caller says so, without following a link;
* at most ``limit`` bytes are read, checked before reading (``st_size``) and
  while reading (a file that grows, or lies about its size);
* JSON is refused when it nests deeper than :data:`MAX_JSON_DEPTH` levels,
  both when the decoder itself gives up (tens of thousands of brackets) and
  when it parses but would break the project's recursive code later.

Every refusal is the caller's error class with one line naming what was
read (a path, or "etcd key ..." for text that did not come from a file).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import json
import os
import stat
from itertools import chain, compress
from typing import Any, Callable, Iterator

from .errors import InventoryError

MiB = 1024 * 1024
# Far above any real inventory (3000 hosts are about 5 MiB of JSON), far below a machine's memory.
MAX_INVENTORY_BYTES = 512 * MiB
# A real inventory nests about 8 levels (hostvars, container_networks, static_routes), a deployer's
# variables a few more; every recursive step of the project stays far inside Python's stack at this depth.
MAX_JSON_DEPTH = 100

_CONTAINERS = frozenset((dict, list))
#: Says whether a parsed value is, as JSON text, one already known to nest within the bound (see
#: :func:`known_values`); None: none is.
_KNOWN: contextvars.ContextVar[Callable[[Any], bool] | None] = contextvars.ContextVar(
    "osa_inventory_known_values", default=None)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def describe_kind(mode: int) -> str:
    """What a file of ``mode`` is, in words ("a FIFO (named pipe)"), or "a regular file"."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "a regular file"


def read_file(path: str, *, limit: int, error: type[InventoryError] = InventoryError,
              follow_links: bool = True, dir_fd: int | None = None, shown: str | None = None,
              inspect: Callable[[os.stat_result], None] | None = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    ``follow_links=False`` refuses a symbolic link in the last component (the
    caller checks any link it means to follow); ``dir_fd`` opens ``path``
    relative to an open folder. ``shown`` is how refusals name the file
    (default: ``path``). ``inspect`` is called with the status of the file
    opened, before any other check and before anything is read, so a caller
    can judge (and refuse, by raising) exactly the file it gets.
    FileNotFoundError passes through for callers to whom a missing file is no error.
    """
    name = shown or path
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_links:
            raise error(f"{name}: is a symbolic link, which is not followed here; replace it with the "
                        "file itself") from None
        raise error(f"{name}: cannot be read ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if inspect is not None:
            inspect(st)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{name}: is {describe_kind(st.st_mode)}, not a regular file; "
                        "put the file itself there")
        if st.st_size > limit:
            raise error(f"{name}: is larger than {_size(limit)}; no such file is that large, check it")
        chunks = []
        left = limit + 1
        # The size it claims, plus one byte to see it grew, in one read: usually one chunk, never joined.
        step = max(st.st_size + 1, MiB)
        while left > 0:
            chunk = os.read(fd, min(left, step))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise error(f"{name}: is larger than {_size(limit)}; no such file is that large, check it")
        return data
    except OSError as exc:
        raise error(f"{name}: cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def parse_json(data: bytes | str, *, shown: str, error: type[InventoryError] = InventoryError,
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``data`` as JSON, refused in one line naming ``shown`` when it is not JSON or nests too deeply."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise error(f"{shown}: is not UTF-8 text (byte {exc.start}); it is damaged") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise error(_too_deep(shown, max_depth)) from None
    except ValueError as exc:
        raise error(f"{shown}: is not valid JSON ({exc})") from None
    # A text with no more brackets than the bound cannot nest deeper (counting them is C-fast; the
    # walk is not): most small values, an etcd part or a Craton page, skip the walk.
    if text.count("[") + text.count("{") > max_depth and not _is_known(value) and nesting_exceeds(value, max_depth):
        raise error(_too_deep(shown, max_depth))
    return value


def _is_known(value: Any) -> bool:
    known = _KNOWN.get()
    return known is not None and known(value)


@contextlib.contextmanager
def known_values(known: Callable[[Any], bool]) -> Iterator[None]:
    """Within, a value :func:`parse_json` parses is not walked for its depth when ``known(value)`` is true.

    How deep a value nests follows from its JSON text alone, so a value whose text is one that passed
    the walk before (:mod:`osa_inventory.reuse`: the stored inventory of a run that succeeded, by its
    digest) needs no second walk. ``known`` must say False for anything it cannot serialise.
    """
    token = _KNOWN.set(known)
    try:
        yield
    finally:
        _KNOWN.reset(token)


def nesting_exceeds(value: Any, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` has lists or dicts nested more than ``max_depth`` levels deep.

    Level by level, without recursion, so the check itself cannot exhaust the
    stack. Every run pays it on the stored inventory, so the values of a level
    are gathered and sorted out by C code (``chain``, ``map``, ``compress``):
    about half a parse of the same text, a third of the plain loop's cost.
    Dicts and lists are known by their exact types, as ``json.loads`` makes them.
    """
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return True
        children = list(chain.from_iterable([item.values() if type(item) is dict else item for item in level]))
        level = list(compress(children, map(_CONTAINERS.__contains__, map(type, children))))
    return False


def _too_deep(shown: str, max_depth: int) -> str:
    return (f"{shown}: nests lists or objects more than {max_depth} levels deep, which no inventory does; "
            "it is damaged or hostile")


def _size(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit >= MiB else f"{limit} bytes"


def check_nesting(value: Any, *, shown: str, error: type[InventoryError] = InventoryError,
                  max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse, in one line naming ``shown``, data already in memory that nests deeper than ``max_depth``.

    For data that did not come through :func:`parse_json` (a third-party plugin's ``load()``), which
    may hold mappings and sequences of any type (an ``OrderedDict``, a tuple): all of them are walked.
    """
    level = [value]
    for _ in range(max_depth + 1):
        level = [child for item in level if isinstance(item, (dict, list, tuple))
                 for child in (item.values() if isinstance(item, dict) else item)]
        if not level:
            return
    raise error(_too_deep(shown, max_depth))
