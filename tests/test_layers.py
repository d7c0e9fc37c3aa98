"""Which layer may import which: the rules README's Layout section states, held by reading the imports.

inventory-manage (``manage/``) is a front end: only its entry point (``commands/``) imports it, so the
Python API, storage, backends and the generator never depend on the operators' tool. The inventory
document (``inventory/``) and the generator depend on no storage or front end.
"""

from __future__ import annotations

import ast
import os

import pytest

from helpers import ROOT

PACKAGE = os.path.join(ROOT, "lib", "osa_inventory")


def imported_modules(path: str, placed_at: str | None = None) -> set[str]:
    """The osa_inventory modules a source file imports, as dotted names below the package; relative
    imports are read as if the file were at ``placed_at`` (default: where it is)."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    here = os.path.relpath(os.path.dirname(placed_at or path), PACKAGE).split(os.sep)
    here = [] if here == ["."] else here
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else list(here)
                module = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("osa_inventory"):
                module = node.module[len("osa_inventory"):].lstrip(".")
            else:
                continue
            found.add(module)
            found.update(f"{module}.{alias.name}".lstrip(".") for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name[len("osa_inventory"):].lstrip(".") for a in node.names
                         if a.name.startswith("osa_inventory"))
    return found


def sources(below: str = "") -> list[str]:
    out = []
    for folder, _, files in os.walk(os.path.join(PACKAGE, below)):
        out += [os.path.join(folder, f) for f in files if f.endswith(".py")]
    return sorted(out)


def layer_of(path: str) -> str:
    rel = os.path.relpath(path, PACKAGE)
    return rel.split(os.sep)[0] if os.sep in rel else rel[:-3]


def test_the_import_reader_sees_relative_and_absolute_imports(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("from ..manage import cli\nfrom .backend import Backend\nimport osa_inventory.errors\n"
                      "from osa_inventory.inventory import edits\nimport json\n")
    placed = os.path.join(PACKAGE, "storage", "x.py")
    assert layer_of(placed) == "storage" and layer_of(os.path.join(PACKAGE, "api.py")) == "api"
    assert imported_modules(str(source), placed) == {"manage", "manage.cli", "storage.backend",
                                                     "storage.backend.Backend", "errors", "inventory",
                                                     "inventory.edits"}


@pytest.mark.parametrize("path", [p for p in sources() if layer_of(p) not in ("manage", "commands")],
                         ids=lambda p: os.path.relpath(p, PACKAGE))
def test_only_the_entry_points_import_the_operators_tool(path):
    assert not {m for m in imported_modules(path) if m == "manage" or m.startswith("manage.")}


@pytest.mark.parametrize("path", sources("inventory") + sources("generate"),
                         ids=lambda p: os.path.relpath(p, PACKAGE))
def test_the_document_and_the_generator_import_no_storage_or_front_end(path):
    forbidden = ("storage", "backends", "manage", "commands", "api")
    assert not {m for m in imported_modules(path) if m.split(".")[0] in forbidden}
