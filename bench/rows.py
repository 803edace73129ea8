"""The one way a benchmark hands over its result: print the Markdown table rows, and with
``--append`` add them to the end of BENCHMARKS.md (whose section says what the columns are)."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path("BENCHMARKS.md")


def emit(rows: list[str], append: bool) -> None:
    """Print ``rows`` (Markdown table lines); append them to BENCHMARKS.md when ``append``."""
    print("\n".join(rows))
    if append:
        with BENCHMARKS.open("a") as f:
            f.write("\n".join(rows) + "\n")
