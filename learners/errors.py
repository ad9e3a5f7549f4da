"""The one error type a user can fix: a configuration, an argument or a data folder that is wrong.

Its message says what to do. Front ends (the CLI) print it as one line; any other exception is a
bug and keeps its traceback.
"""


class ConfigError(ValueError):
    """A configuration or input the user gave is wrong; the message says how to put it right."""
