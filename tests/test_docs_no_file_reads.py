"""No shipped example or doc shows a helper reading ``openstack_inventory.json`` itself (issue 24).

With etcd or Craton as the store there is no such file: helpers ask the Python API
(docs/api.md). The code of every example under examples/ and every python block of
README.md and docs/ may name the file in prose (docstrings, comments) but never in code,
and no shell block pipes it into a JSON reader. The filesystem backend's own docs,
migration and restore steps name the file as what they copy or restore; they do not
parse it, so they pass.
"""

from __future__ import annotations

import ast
import os
import re

import pytest
from helpers import ROOT

FILE_NAME = "openstack_inventory.json"
# A shell line that parses the file: jq, a python -c, or a json module call on it.
SHELL_READERS = re.compile(r"\bjq\b|python3?\s+-c|json\.loads?\b")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


def docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of the constant nodes that are docstrings (prose, allowed to name the file)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def code_naming_the_file(source: str) -> list[int]:
    """Line numbers of string literals in code (not docstrings) that name the inventory file.

    A sketch that does not parse (``for ...`` in a doc) is read line by line, comments left out.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [number for number, line in enumerate(source.splitlines(), 1) if FILE_NAME in line.split("#")[0]]
    prose = docstring_nodes(tree)
    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and FILE_NAME in node.value and id(node) not in prose)


def blocks(path: str) -> list[tuple[str, int, str]]:
    """The fenced blocks of a Markdown file: (language, first line number, text)."""
    found, language, start, lines = [], None, 0, []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            fence = FENCE.match(line)
            if fence and language is None:
                language, start, lines, indent = fence.group(2), number + 1, [], len(fence.group(1))
            elif fence and language is not None:
                found.append((language, start, "".join(lines)))
                language = None
            elif language is not None:
                lines.append(line[indent:] if line[:indent].isspace() else line)
    return found


def problems_in_markdown(path: str) -> list[str]:
    shown = os.path.relpath(path, ROOT)
    problems = []
    for language, start, text in blocks(path):
        if language == "python":
            problems += [f"{shown}:{start + line - 1}: python code names {FILE_NAME}"
                         for line in code_naming_the_file(text)]
        elif language in ("sh", "bash", "shell", ""):
            for offset, line in enumerate(text.splitlines()):
                if FILE_NAME in line and SHELL_READERS.search(line):
                    problems.append(f"{shown}:{start + offset}: a shell line parses {FILE_NAME}")
    return problems


def shipped_examples() -> list[str]:
    found = []
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "examples")):
        found += [os.path.join(folder, name) for name in files if name.endswith(".py")]
    return sorted(found)


def shipped_docs() -> list[str]:
    docs = os.path.join(ROOT, "docs")
    return [os.path.join(ROOT, "README.md")] + sorted(os.path.join(docs, n) for n in os.listdir(docs)
                                                      if n.endswith(".md"))


def test_there_is_something_to_check():
    assert len(shipped_examples()) >= 5 and len(shipped_docs()) >= 8
    python_blocks = [b for path in shipped_docs() for b in blocks(path) if b[0] == "python"]
    assert len(python_blocks) >= 10, "the block reader found too few python blocks"


@pytest.mark.parametrize("path", shipped_examples(), ids=lambda p: os.path.relpath(p, ROOT))
def test_no_example_reads_the_inventory_file(path):
    with open(path, encoding="utf-8") as fh:
        lines = code_naming_the_file(fh.read())
    assert lines == [], f"{os.path.relpath(path, ROOT)} names {FILE_NAME} in code at lines {lines}; " \
                        "use osa_inventory.api (docs/api.md)"


@pytest.mark.parametrize("path", shipped_docs(), ids=lambda p: os.path.relpath(p, ROOT))
def test_no_doc_block_reads_the_inventory_file(path):
    assert problems_in_markdown(path) == []


# -- the checks catch what they are for -------------------------------------------------------------------

READING_HELPER = '''
"""Reads openstack_inventory.json (prose may say so)."""
import json

# a comment naming openstack_inventory.json is prose too
with open("/etc/openstack_deploy/openstack_inventory.json") as fh:
    inventory = json.load(fh)
'''


def test_code_naming_the_file_is_found_and_prose_is_not():
    assert code_naming_the_file(READING_HELPER) == [6]
    assert code_naming_the_file('"""openstack_inventory.json in a docstring"""\nx = 1\n') == []
    sketch = "for ... in x:\n    # openstack_inventory.json\n    open('openstack_inventory.json')\n"
    assert code_naming_the_file(sketch) == [3]


def test_a_markdown_block_reading_the_file_is_found(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("Intro naming openstack_inventory.json.\n\n```python\n" + READING_HELPER + "```\n\n"
                   "1. Step:\n\n   ```sh\n   jq '.all' /etc/openstack_deploy/openstack_inventory.json\n   ```\n\n"
                   "```sh\ncp -a /etc/openstack_deploy/openstack_inventory.json /root/saved.json\n```\n")
    problems = problems_in_markdown(str(doc))
    assert [p.split(": ", 1)[1] for p in problems] == ["python code names openstack_inventory.json",
                                                      "a shell line parses openstack_inventory.json"]
    assert problems[0].endswith(":9: python code names openstack_inventory.json"), problems
