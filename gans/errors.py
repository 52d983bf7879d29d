"""The exception types the command line turns into a one-line message and exit code 2.

Every one is a `GansError`; the subclasses let a script catch one kind of problem and let the
others through (a bad override in a sweep, say, but not a full disk)."""


class GansError(Exception):
    """A user-facing error: the message names the problem and the fix, on one line."""


class RecipeError(GansError):
    """A recipe that cannot be read or does not validate: a file, a key, a value, an override."""


class CheckpointError(GansError):
    """A checkpoint or exported generator that cannot be read, or that needs trust to load."""
