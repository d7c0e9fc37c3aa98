"""Plugin options: what a storage plugin (and osa.ini's ``[inventory]``) accepts, and reading them.

A plugin declares its options in a module-level ``OPTIONS``: a sequence of
:class:`Option` (or, for a plugin that must not import this project, a
mapping of option name to a dict of the same fields). The loader then
refuses unknown options and malformed values before the plugin sees them,
resolves relative paths against the folder of osa.ini, and
``scripts/render-options.py --check`` (run by ``tests/test_declarations.py``)
holds ``osa.ini.sample`` and the docs to the declarations. A plugin without ``OPTIONS`` keeps working: its
section is passed through unchecked.

``register(args)`` still receives strings (the plugin contract); a plugin
turns them into typed values with :func:`read_options`, so the defaults
live in one place, the declaration.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import PluginError, StorageError

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
# text: any string; number / whole: float / int >= minimum; flag: true or false;
# path: a file or folder; paths: several, comma or newline separated;
# flag_or_path: true, false or a path (e.g. a CA bundle); choice: one of ``choices``.
KINDS = ("text", "number", "whole", "flag", "path", "paths", "flag_or_path", "choice")
PATH_KINDS = ("path", "paths", "flag_or_path")
# Every section may hold these: which plugin serves it, and the folder it works in.
RESERVED = ("plugin", "config_dir")


@dataclass(frozen=True)
class Option:
    """One declared option: its name, type, default and whether its value is secret."""

    name: str
    kind: str = "text"
    default: Any = None
    minimum: float | None = None
    above_minimum: bool = False   # the minimum itself is refused (e.g. a timeout of 0)
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False
    help: str = ""

    def describe_kind(self) -> str:
        """The kind in words, for 'is not ...' messages."""
        if self.kind in ("whole", "number"):
            words = "a whole number" if self.kind == "whole" else "a number"
            if self.minimum is not None:
                words += f" above {self.minimum:g}" if self.above_minimum else f" >= {self.minimum:g}"
            if self.maximum is not None:
                words += f" and at most {self.maximum:g}"
            return words
        if self.kind == "flag":
            return "true or false"
        if self.kind == "choice":
            return " or ".join(self.choices)
        return self.kind


Declaration = dict[str, Option]


def declare(*options: Option) -> Declaration:
    """A declaration from options, checked for duplicate names and unknown kinds."""
    declared: Declaration = {}
    for option in options:
        if option.kind not in KINDS:
            raise ValueError(f"option {option.name}: unknown kind {option.kind!r}; use one of {', '.join(KINDS)}")
        if option.name in declared or option.name in RESERVED:
            raise ValueError(f"option {option.name} is declared twice or is reserved")
        declared[option.name] = option
    return declared


def module_declaration(module: Any) -> Declaration | None:
    """A plugin module's ``OPTIONS`` as a declaration, or None when it declares none."""
    raw = getattr(module, "OPTIONS", None)
    if raw is None:
        return None
    where = getattr(module, "__file__", "plugin")
    try:
        if isinstance(raw, Mapping):
            items = [value if isinstance(value, Option) else Option(name=str(name), **dict(value))
                     for name, value in raw.items()]
        else:
            items = list(raw)
        if not all(isinstance(item, Option) for item in items):
            raise TypeError("entries must be Option objects or dicts of Option fields")
        return declare(*items)
    except (TypeError, ValueError) as exc:
        raise PluginError(f"storage plugin {where}: OPTIONS is malformed ({exc}); "
                          "see docs/writing-plugins.md") from None


def convert(option: Option, raw: str) -> Any:
    """``raw`` as ``option``'s type; blank gives the default. ValueError says what is expected."""
    text = str(raw).strip()
    if not text:
        return option.default
    if option.kind in ("number", "whole"):
        try:
            value: Any = int(text) if option.kind == "whole" else float(text)
        except ValueError:
            value = None
        minimum = option.minimum if option.minimum is not None else float("-inf")
        maximum = option.maximum if option.maximum is not None else float("inf")
        # value != value: NaN, which compares false with everything
        if value is None or value != value or value < minimum or value > maximum or (
                option.above_minimum and value == minimum):
            raise ValueError(f"is not {option.describe_kind()}")
        return value
    if option.kind == "flag" or (option.kind == "flag_or_path" and text.lower() in TRUE_WORDS | FALSE_WORDS):
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise ValueError("is not true or false")
    if option.kind == "choice" and text not in option.choices:
        raise ValueError(f"is not {option.describe_kind()}")
    return text


def shown(option: Option | None, raw: str) -> str:
    """A value as it may appear in a message: a secret's value never does."""
    if option is not None and option.secret:
        return "(secret value hidden)"
    return repr(raw)


def advice(option: Option) -> str:
    """What to do about a malformed value: the default as an example, when there is one."""
    if option.default not in (None, "") and not option.secret:
        default = str(option.default).lower() if isinstance(option.default, bool) else option.default
        return f"set it to e.g. {default:g}" if isinstance(default, float) else f"set it to e.g. {default}"
    return "fix the value"


def closest(name: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' for the nearest known name, or ''."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def read_options(declared: Declaration, args: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared option as its typed value (default when absent); for ``register()``.

    Values the loader already checked pass; a plugin registered directly
    (tests, other tools) gets the same checks as one-line StorageErrors.
    """
    values: dict[str, Any] = {}
    for name, option in declared.items():
        raw = args.get(name)
        try:
            values[name] = option.default if raw is None else convert(option, raw)
        except ValueError as exc:
            raise StorageError(f"option {name} = {shown(option, str(raw))} {exc}") from None
    return values
