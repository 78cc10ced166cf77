"""The one exception type for a user's mistake.

Anything a user can get wrong (a corrupt image, an unknown class folder, a
checkpoint of another architecture) raises :class:`UserError` with a one-line
message that names the file, line, layer or shape and says what to do. The
command-line entry points catch it, print the message and exit with status 2,
so a user never sees a traceback for their own mistake.

It subclasses ``ValueError`` so library callers can catch it the usual way.
"""


class UserError(ValueError):
    """Bad input from the user: the message is one line and says what to do."""
