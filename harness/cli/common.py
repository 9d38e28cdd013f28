"""What the commands share: exit codes, the usage error, and number formats."""

from __future__ import annotations

import sys

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "fmt", "levels", "usage_error"]

#: 0 success, 1 a check or gate failed, 2 bad usage or input.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def usage_error(message: str) -> int:
    """Say what is wrong with the command line; returns the exit code for it."""
    print(f"sse-harness: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def fmt(value: float | None) -> str:
    """A figure of a table: two decimals, thousands grouped, ``-`` for none."""
    return "-" if value is None else f"{value:,.2f}"


def levels(text: str) -> list[int] | None:
    """``"1,10,100"`` as concurrency levels; None when it is not positive whole numbers."""
    try:
        found = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        return None
    return found if found and min(found) >= 1 else None
