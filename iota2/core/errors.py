"""Exception types: one per kind of problem, each carrying the fix in its message."""


class Iota2Error(Exception):
    """Base class of every error iota2 reports to a user (the CLI prints it on one line, exit code 2)."""


class ConfigError(Iota2Error):
    """A configuration key is missing, misspelled, of the wrong type or has a value that cannot work."""


class InputDataError(Iota2Error):
    """An input file (raster, vector, product folder) is missing, unreadable or inconsistent."""


class PluginError(Iota2Error):
    """A plugin cannot be found, loaded or does not honour its contract."""


class TaskFailedError(Iota2Error):
    """One or more tasks of the graph failed after their retries."""


class OutputWriteError(Iota2Error, OSError):
    """An output could not be written completely (disk full, quota, I/O error); nothing was left under its name.

    An :class:`OSError` too (with the ``errno`` of the cause when known), so code that tolerates a failed optional
    write (``except OSError``) still does.
    """

    def __str__(self) -> str:
        return self.strerror or super().__str__()
