"""Render listings as a bordered text table, JSON or YAML."""

from __future__ import annotations

import json
from typing import Any, Sequence

import yaml

FORMATS = ("table", "json", "yaml")


def cell(value: Any) -> str:
    """The text of one table cell: empty for None, lists joined with commas."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A table with a header and ``+---+`` borders, one row per line."""
    texts = [[cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in texts:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: Sequence[str]) -> str:
        return "|" + "|".join(f" {v:<{w}} " for v, w in zip(values, widths)) + "|"

    out = [rule, line(columns), rule]
    out.extend(line(row) for row in texts)
    out.append(rule)
    return "\n".join(out)


def render_data(data: Any, fmt: str) -> str:
    """``data`` as indented JSON or block-style YAML, in the order it was built."""
    if fmt == "yaml":
        return yaml.safe_dump(data, default_flow_style=False, sort_keys=False).rstrip("\n")
    return json.dumps(data, indent=2)
