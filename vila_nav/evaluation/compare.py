"""`vila-nav eval-table`: several evaluation summaries in one markdown table.

    vila-nav eval-table runs/eval/model runs/eval/random runs/eval/oracle [--names a b c]

Each argument is a run directory (or its summary.json); rows appear in the given order, named
after the directory unless --names is given.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .results import ResultsError, load_summary, results_table


def compare(paths: Sequence[Path], names: Sequence[str] | None = None) -> str:
    """Markdown table of the summaries at `paths` (run dirs or summary.json files)."""
    if names is not None and len(names) != len(paths):
        raise ValueError(f"{len(names)} names for {len(paths)} summaries")
    rows = []
    for i, p in enumerate(paths):
        p = Path(p)
        name = names[i] if names is not None else (p.parent.name if p.is_file() else p.name)
        rows.append((name, load_summary(p)))
    return results_table(rows)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="vila-nav eval-table", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories or summary.json files")
    p.add_argument("--names", nargs="+", help="row names (default: directory names)")
    args = p.parse_args(argv)
    try:
        print(compare(args.runs, args.names), end="")
    except (ResultsError, ValueError) as exc:
        print(f"vila-nav eval-table: error: {exc}", file=sys.stderr)
        return 1
    return 0
