"""Render listings as a bordered text table, JSON or YAML."""

from __future__ import annotations

import json
from typing import Any, Sequence

import yaml

from ..terminal import Shown, escape

FORMATS = ("table", "json", "yaml")


class Lines(tuple):
    """A table cell shown one item per line (OSA's ``-G`` puts one group member per line)."""


def cell(value: Any) -> str:
    """The text of one table cell: empty for None, lists joined with commas."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _cell_lines(value: Any) -> list[str]:
    """The escaped lines of one cell: one, or one per item of :class:`Lines`."""
    items = value if isinstance(value, Lines) else (value,)
    return [escape(cell(item)) for item in items] or [""]


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Shown:
    """A table with a header and ``+---+`` borders, left-aligned as OSA's tool prints it.

    Every cell is escaped for the terminal (:mod:`osa_inventory.terminal`), so a
    line break or control character inside a value shows as an escape in its
    cell and the borders stay aligned. A :class:`Lines` cell spans one line per
    item; the other cells of its row are blank below their first line.
    """
    texts = [[_cell_lines(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in texts:
        for i, lines in enumerate(row):
            widths[i] = max([widths[i]] + [len(text) for text in lines])
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: Sequence[str]) -> str:
        return "|" + "|".join(f" {v:<{w}} " for v, w in zip(values, widths)) + "|"

    out = [rule, line(columns), rule]
    for row in texts:
        for n in range(max(len(lines) for lines in row)):
            out.append(line([lines[n] if n < len(lines) else "" for lines in row]))
    out.append(rule)
    return Shown("\n".join(out))


def render_data(data: Any, fmt: str) -> str:
    """``data`` as indented JSON or block-style YAML, in the order it was built."""
    if fmt == "yaml":
        return yaml.safe_dump(data, default_flow_style=False, sort_keys=False).rstrip("\n")
    return json.dumps(data, indent=2)
