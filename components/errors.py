"""The one exception type for mistakes a user can cause and fix (bad params, missing data, ...).

Entry points catch it and print its message as one line, exiting non-zero without a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class UserError(Exception):
    """An expected, user-fixable failure; ``str(err)`` names the cause and the fix."""


def exit_on_user_error(main: Callable[..., int | None]) -> Callable[..., int | None]:
    """Wrap a CLI ``main`` so a :class:`UserError` prints ``error: <message>`` and exits 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
