"""Stage `report`: a Markdown leaderboard of every metrics file.

    python -m pipelines.report [--metrics metrics] [--out reports/index.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from components.errors import UserError, exit_on_user_error
from components.io import atomic_write_text
from components.report.markdown import render


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default="metrics", type=Path)
    parser.add_argument("--out", default="reports/index.md", type=Path)
    args = parser.parse_args(argv)
    if not args.metrics.is_dir():
        raise UserError(f"metrics directory not found: {args.metrics.resolve()} (run the train stages first)")
    atomic_write_text(args.out, render(args.metrics))
    print(f"report: {args.out}")


if __name__ == "__main__":
    main()
