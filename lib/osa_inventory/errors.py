"""The project's own exceptions.

Every failure a user can cause or meet is raised as an :class:`InventoryError`
whose message is one line that names the file, key or value at fault and
what to do about it. The command-line front ends print that line on stderr
and exit with status 1; nothing else is ever shown to the user.
"""


class InventoryError(Exception):
    """A problem to report to the user as one clear line."""


class ConfigError(InventoryError):
    """The deployment configuration (user config, conf.d, env.d) is wrong."""


class ConfigErrors(ConfigError):
    """Several config problems at once (``--check``), one line each in ``lines``."""

    def __init__(self, lines: list[str]):
        super().__init__(lines[0] if lines else "")
        self.lines = [" ".join(line.split()) for line in lines]


class SettingsError(InventoryError):
    """osa.ini or an OSA_INVENTORY_* variable is wrong."""


class PluginError(InventoryError):
    """A storage plugin could not be found, loaded or validated."""


class StorageError(InventoryError):
    """A storage backend failed to load or store the inventory.

    Plugins may raise this (or any exception); the loader wraps whatever a
    plugin raises into a StorageError that names the backend.
    """


class StorageTimeout(StorageError):
    """A step of plugin code (import, lock, load, write) ran past ``[inventory] timeout``.

    Raised where the caller must survive it (the Python API); the commands end
    the process instead. The message names the backend, the step and the advice.
    """


class AccessDenied(StorageError):
    """The backend refused these credentials: wrong ones, or too few rights (e.g. read-only).

    Raise it (or a subclass) from a plugin when the store answered "not
    allowed": callers then never offer advice such as ``--force`` that
    cannot help, only the credentials can.
    """


class CorruptInventory(StorageError):
    """A stored inventory that cannot be used as it is (wrong shape, nested too deep); it is never rewritten.

    Carries what the advice needs, which the command that met it builds: whether
    the backend gives back earlier inventories (``versions``: restore one;
    otherwise store a saved copy again) and the config folder the tool works on.
    """

    def __init__(self, message: str, versions: bool, config_dir: str | None = None):
        super().__init__(message)
        self.versions = versions
        self.config_dir = config_dir


class NoVersions(StorageError):
    """The backend keeps change records but not earlier inventories, so versions cannot be compared or restored.

    ``config_dir`` is the config folder the tool works on, for the advice the command builds.
    """

    def __init__(self, message: str, config_dir: str | None = None):
        super().__init__(message)
        self.config_dir = config_dir


class NothingStored(InventoryError):
    """The backend holds no inventory yet (no inventory run has stored one).

    ``config_dir`` is the config folder the command works on: a command adds how to store a first
    inventory, named the way its user runs it; the Python API raises it as it is.
    """

    def __init__(self, message: str, config_dir: str | None = None):
        super().__init__(message)
        self.config_dir = config_dir


def one_line(exc: BaseException) -> str:
    """An exception's message folded onto one line (its type name if it has none)."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())
