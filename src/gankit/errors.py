"""The one exception type for mistakes a user can fix."""

from __future__ import annotations


class GankitError(ValueError):
    """A problem with the user's input, options or files.

    The message is one sentence that names the bad value and says what to do, in words that
    fit a Python caller as well as the command line (no option names outside ``gankit.cli``).
    A ValueError, so library callers catch it as the bad value it is; the CLI prints it
    without a traceback and exits with status 2.

    ``option``, when given, names the setting the fix is about by its Python name
    (``"image_size"``, ``"skip_corrupt"``): the command line adds the flag that sets it.
    """

    def __init__(self, *args: object, option: str | None = None) -> None:
        super().__init__(*args)
        self.option = option
