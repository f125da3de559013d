"""The one error type the CLI turns into a one-line message and exit code 2."""


class DfbenchError(Exception):
    """A user-facing problem: the message says what is wrong and what to do."""
