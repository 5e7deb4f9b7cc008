"""Errors caused by user input. The CLI prints these as one line instead of a traceback."""


class UserError(ValueError):
    """Bad input from the user: a config key, a data file, a checkpoint. The message names the culprit."""


class ConfigError(UserError):
    """A model or run configuration that cannot work."""


class DataError(UserError):
    """Bad input data: the message names the file (and line) at fault."""


class CheckpointError(UserError):
    """A checkpoint that does not fit: the message names the file or tensor."""
