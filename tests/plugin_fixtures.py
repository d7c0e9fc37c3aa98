"""What the plugin tests share: a recording plugin, plugin folders, osa.ini files, checks."""

from __future__ import annotations

import json
import os
import shutil
import textwrap

import pytest
from helpers import write_ini

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE_CONFIG = os.path.join(ROOT, "tests", "fixtures", "small_config")

# A well-behaved plugin that stores the inventory in [section] target and logs every call.
RECORDER = '''
import contextlib, json, os


class Storage:
    def register(self, args):
        self.target = args["target"]
        self._log("register " + json.dumps(args, sort_keys=True))

    def _log(self, line):
        with open(self.target + ".calls", "a") as fh:
            fh.write(line + "\\n")

    def load(self):
        self._log("load")
        if not os.path.exists(self.target):
            return None
        with open(self.target) as fh:
            return json.load(fh)

    def write(self, inventory):
        self._log("write")
        with open(self.target, "w") as fh:
            json.dump(inventory, fh)

    @contextlib.contextmanager
    def lock(self):
        self._log("lock")
        try:
            yield
        finally:
            self._log("unlock")

    def close(self):
        self._log("close")
'''

# Where recording_plugin puts the code run at each step: after these lines of RECORDER.
_STEP_LINES = {"register": '        self.target = args["target"]\n', "load": '        self._log("load")\n',
               "write": '        self._log("write")\n', "lock": "    def lock(self):\n"}
_LOCK_START, _LOCK_END = "    @contextlib.contextmanager\n", "    def close(self):"


def recording_plugin(imports: tuple[str, ...] = (), preamble: str = "", at: dict[str, str] | None = None,
                     lock: str | None = None) -> str:
    """RECORDER with more modules imported, ``preamble`` at module level, code run at the start of each step
    (``at``: register, load, write, lock) and another ``lock`` method (its whole source, 4-space indented)."""
    source = RECORDER
    if lock is not None:
        start, end = source.index(_LOCK_START), source.index(_LOCK_END)
        source = source[:start] + lock.rstrip("\n") + "\n\n" + source[end:]
    for step, code in (at or {}).items():
        line = _STEP_LINES[step]
        assert source.count(line) == 1, f"no single place for code at {step}"
        source = source.replace(line, line + textwrap.indent(code.rstrip("\n"), " " * 8) + "\n")
    modules = ", ".join(sorted({"contextlib", "json", "os", *imports}))
    return source.replace("import contextlib, json, os\n", f"import {modules}\n{preamble}", 1)


@pytest.fixture
def config_dir(tmp_path) -> str:
    folder = tmp_path / "config"
    shutil.copytree(FIXTURE_CONFIG, folder)
    return str(folder)


def plugin_dir(tmp_path, files: dict[str, str], name: str = "plugins") -> str:
    """A plugin folder with safe permissions holding ``files`` (name -> source)."""
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o755)
    for filename, source in files.items():
        path = folder / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o755)
        path.write_text(textwrap.dedent(source))
        os.chmod(path, 0o644)
    return str(folder)


def ini_for(tmp_path, backend: str, folder: str | None, sections: str = "") -> str:
    text = f"[inventory]\nbackend = {backend}\n"
    if folder:
        text += f"plugin_paths = {folder}\n"
    return write_ini(str(tmp_path), text + textwrap.dedent(sections))


def calls(target: str) -> list[str]:
    with open(target + ".calls") as fh:
        return [line.split(" ", 1)[0] for line in fh.read().splitlines()]


def registered_args(target: str) -> dict:
    with open(target + ".calls") as fh:
        first = fh.readline()
    assert first.startswith("register ")
    return json.loads(first[len("register "):])


def assert_one_line_failure(result, *fragments: str) -> str:
    """Exit 1, nothing on stdout, one ``ERROR:`` line naming every fragment."""
    assert result.returncode == 1, (result.returncode, result.stdout[:300], result.stderr)
    assert result.stdout == "", "something was printed on stdout by a failed run"
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]
