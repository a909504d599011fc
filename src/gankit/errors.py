"""The one exception type for mistakes a user can fix."""

from __future__ import annotations


class GankitError(Exception):
    """A problem with the user's input, options or files.

    The message is one sentence that names the bad value and says what to do. The CLI
    prints it without a traceback and exits with status 2.
    """
