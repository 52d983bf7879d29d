"""The one exception type the command line turns into a one-line message and exit code 2."""


class GansError(Exception):
    """A user-facing error: the message names the problem and the fix, on one line."""
