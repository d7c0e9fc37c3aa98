"""Reading plugin options: every value arrives as a string from osa.ini or the environment."""

from __future__ import annotations

from ..errors import StorageError

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def number_option(args: dict, name: str, default: float, minimum: float, whole: bool = False) -> float:
    """Option ``name`` as a number >= ``minimum`` (an int if ``whole``); blank or absent gives ``default``."""
    raw = str(args.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = None
    if value is None or value != value or value < minimum:  # value != value: NaN
        kind = "a whole number" if whole else "a number"
        raise StorageError(f"option {name} = {raw!r} is not {kind} >= {minimum:g}")
    return value


def flag_option(args: dict, name: str, default: bool) -> bool:
    """Option ``name`` as a boolean (true/false, yes/no, on/off, 1/0)."""
    raw = str(args.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise StorageError(f"option {name} = {raw!r} is not true or false")
