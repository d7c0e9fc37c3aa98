"""The one way code inside a plugin namespace is imported: checked source, never bytecode.

pluginbase maps a plugin source to a package whose ``__path__`` is the
plugin folders; Python's own path finder would then import from those
folders whatever it finds there: a ``.pyc`` in ``__pycache__`` (even with
bytecode writing off), a sourceless ``.pyc``, an extension module, a file
nobody checked. This meta path finder, first on ``sys.meta_path``, takes
over every import below a registered namespace (the plugin, its helpers
``from . import helper``, the submodules of a package plugin, at import time
or later): it considers only ``NAME/__init__.py`` and ``NAME.py``, and its
loader reads the source through the descriptor it checked
(:func:`.trust.read_source`) and compiles that. Only this program's own
plugin folder (``lib/plugins/``) is imported the ordinary way, with its
bytecode cache, like the rest of ``lib/``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType
from typing import Sequence

from . import trust


# The import protocols are met by their methods, not through importlib.abc's classes: importing
# importlib.abc brings importlib.resources, pathlib and tempfile, a tenth of every run's imports.
class _CheckedSourceLoader:
    """Executes ``folder/filename`` from the bytes read through its checked descriptor (a loader)."""

    def __init__(self, folder: str, filename: str):
        self.folder = folder
        self.filename = filename

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        path = os.path.join(self.folder, self.filename)
        real = os.path.realpath(path)
        if real != path:  # a symlinked file or package: whoever controls where it leads controls the code
            trust.check_folder(os.path.dirname(real))
        source = trust.read_source(self.folder, self.filename)
        exec(compile(source, path, "exec", dont_inherit=True), module.__dict__)


class PluginFinder:
    """Finds modules below the registered namespaces (a meta path finder); see the module doc."""

    def __init__(self) -> None:
        self._namespaces: set[str] = set()
        self._program_dirs: tuple[str, ...] = ()

    def register(self, namespace: str, program_dirs: Sequence[str] = ()) -> None:
        """Handle imports below ``namespace``; files below ``program_dirs`` (ours) skip the checks."""
        self._namespaces.add(namespace)
        self._program_dirs = tuple(dict.fromkeys(self._program_dirs + tuple(program_dirs)))

    def _ours(self, fullname: str) -> bool:
        parent = fullname.rpartition(".")[0]
        return any(parent == ns or parent.startswith(ns + ".") for ns in self._namespaces)

    def _is_program(self, folder: str) -> bool:
        return any(folder == d or folder.startswith(d + os.sep) for d in self._program_dirs)

    @staticmethod
    def _program_spec(fullname: str, folder: str, name: str):
        package = os.path.join(folder, name)
        if os.path.isfile(os.path.join(package, "__init__.py")):
            return importlib.util.spec_from_file_location(
                fullname, os.path.join(package, "__init__.py"), submodule_search_locations=[package])
        if os.path.isfile(os.path.join(folder, name + ".py")):
            return importlib.util.spec_from_file_location(fullname, os.path.join(folder, name + ".py"))
        return None

    def find_spec(self, fullname: str, path, target=None):
        if not self._ours(fullname):
            return None
        name = fullname.rpartition(".")[2]
        for folder in path or ():
            if self._is_program(folder):  # this program's own plugins: imported like the rest of lib/
                spec = self._program_spec(fullname, folder, name)
                if spec is not None:
                    return spec
                continue
            package = os.path.join(folder, name)
            if os.path.isfile(os.path.join(package, "__init__.py")):
                spec = importlib.machinery.ModuleSpec(
                    fullname, _CheckedSourceLoader(package, "__init__.py"),
                    origin=os.path.join(package, "__init__.py"), is_package=True)
                spec.submodule_search_locations = [package]
            elif os.path.isfile(os.path.join(folder, name + ".py")):
                spec = importlib.machinery.ModuleSpec(
                    fullname, _CheckedSourceLoader(folder, name + ".py"), origin=os.path.join(folder, name + ".py"))
            else:
                continue
            spec.has_location = True  # sets __file__
            return spec
        # Not None: the path finder after us would load a .pyc or an extension module from these
        # folders. ImportError, not ModuleNotFoundError, which "from . import x" turns into a vaguer one.
        raise ImportError(f"no {name}.py or {name}/__init__.py in {', '.join(path or ())} "
                          "(only .py sources are imported from plugin folders)", name=fullname)


FINDER = PluginFinder()


def install() -> PluginFinder:
    """Put :data:`FINDER` first on ``sys.meta_path`` (once) and return it."""
    if FINDER not in sys.meta_path:
        sys.meta_path.insert(0, FINDER)
    return FINDER
