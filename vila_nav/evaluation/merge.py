"""Merge shard results into one run: `vila-nav eval-merge DIR... --out DIR`.

Each DIR is a run directory whose `shard-<i>-of-<n>/` subdirectories are taken, or a shard
directory itself (holding results.jsonl and run.json). Without --out, a single run directory is
merged into itself (its shards are untouched; merging again after a resume is fine). The merge

- refuses duplicate episodes (naming the two sources), shards of different configurations, and
  incomplete shard sets (some `shard-i-of-n` missing);
- checks the merged episodes against the dataset named in the shards' run.json (same selection:
  split, languages, limit): a missing or unexpected episode is an error unless allow_missing;
  if that dataset cannot be read here it says so and skips only that check;
- writes results.jsonl (sorted like an unsharded run), summary.json and summary.md to --out.

Merged metrics equal those of an unsharded run (per-episode results are independent of the
shard; aggregate means use exact summation, so the order does not matter).
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import Sequence

from .results import RESULTS, RUN_JSON, ResultsError, read_rows, rewrite_rows
from .runner import EvalError, episode_sort_key, make_summary, write_summary

log = logging.getLogger(__name__)

_SHARD_RE = re.compile(r"^shard-(\d+)-of-(\d+)$")
_SAME_KEYS = ("dataset", "sim", "agent", "history", "parser")


def _shard_subdirs(d: Path) -> list[Path]:
    subs = [s for s in d.glob("shard-*-of-*") if _SHARD_RE.match(s.name) and s.is_dir()]
    return sorted(subs, key=lambda s: int(_SHARD_RE.match(s.name).group(1)))  # type: ignore[union-attr]


def expand_dirs(dirs: Sequence[Path]) -> list[Path]:
    """Shard directories: a DIR's shard-<i>-of-<n>/ subdirectories if it has any (a run merged
    before is merged again from its shards), else DIR itself if it holds results.jsonl."""
    out: list[Path] = []
    for d in map(Path, dirs):
        subs = _shard_subdirs(d)
        if subs:
            out.extend(subs)
        elif (d / RESULTS).is_file():
            out.append(d)
        else:
            raise EvalError(f"{d}: no {RESULTS} and no shard-<i>-of-<n>/ subdirectories")
    return out


def _run_config(d: Path) -> dict | None:
    f = d / RUN_JSON
    return json.loads(f.read_text()).get("config") if f.is_file() else None


def merge(dirs: Sequence[Path], out: Path, allow_missing: bool = False) -> dict:
    """Merge shard result directories into `out`; return the summary (see module docstring)."""
    shard_dirs = expand_dirs(dirs)
    configs = [_run_config(d) for d in shard_dirs]
    known = [(d, c) for d, c in zip(shard_dirs, configs) if c is not None]
    ref_dir, ref = known[0] if known else (None, None)
    for d, c in known[1:]:
        differing = [k for k in _SAME_KEYS if c.get(k) != ref.get(k)]  # type: ignore[union-attr]
        if differing:
            raise EvalError(f"cannot merge {d} with {ref_dir}: different configuration ({', '.join(differing)})")
    counts = {c["shard"]["count"] for _, c in known}
    if len(counts) > 1:
        raise EvalError(f"cannot merge shards of different counts {sorted(counts)}")
    if known and not allow_missing:
        count = counts.pop()
        have = {c["shard"]["index"] for _, c in known}
        missing = sorted(set(range(count)) - have)
        if missing:
            raise EvalError(f"shard(s) {missing} of {count} missing from the merge (give all shard directories, "
                            "or --allow-missing)")

    rows, source = [], {}
    for d in shard_dirs:
        shard_rows, truncated = read_rows(d / RESULTS)
        if truncated:
            log.warning("%s: truncated last line ignored (that shard was interrupted)", d / RESULTS)
        for r in shard_rows:
            eid = str(r["episode_id"])
            if eid in source:
                raise EvalError(f"episode '{eid}' appears in both {source[eid]} and {d}")
            source[eid] = d
            rows.append(r)
    if not rows:
        raise EvalError(f"nothing to merge: no results in {', '.join(map(str, shard_dirs))}")
    rows.sort(key=lambda r: episode_sort_key(str(r["episode_id"])))

    dataset = dict(ref["dataset"]) if ref else {}
    expected = _expected_ids(ref) if ref else None
    if expected is not None:
        got = set(source)
        missing, extra = sorted(expected - got, key=episode_sort_key), sorted(got - expected, key=episode_sort_key)
        if extra:
            raise EvalError(f"{len(extra)} merged episode(s) are not in the dataset selection (e.g. {extra[:5]})")
        if missing and not allow_missing:
            raise EvalError(f"{len(missing)} episode(s) of the dataset have no result (e.g. {missing[:5]}); "
                            "finish those shards (resume=true) or pass --allow-missing")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rewrite_rows(out / RESULTS, rows)
    name = ref["agent"]["name"] if ref else "merged"
    summary = make_summary(name, dataset, rows, selected=len(expected) if expected is not None else None,
                           run={"merged_from": [str(d) for d in shard_dirs],
                                "dataset_checked": expected is not None})
    write_summary(out, name, summary)
    return summary


def _expected_ids(cfg: dict) -> set[str] | None:
    """Episode ids of the dataset selection in a run config, or None if it cannot be read here."""
    from types import SimpleNamespace

    from vila_nav.episodes import EpisodeFormatError

    from .runner import select_episodes

    ds = SimpleNamespace(**cfg["dataset"])
    try:
        return {e.episode_id for e in select_episodes(ds)}
    except (EpisodeFormatError, EvalError) as exc:
        print(f"eval-merge: WARNING: dataset not checked ({exc})", file=sys.stderr)
        return None


def main(argv: list[str]) -> int:
    """`vila-nav eval-merge DIR... --out DIR [--allow-missing]`."""
    p = argparse.ArgumentParser(prog="vila-nav eval-merge", description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path, help="shard directories, or run directories with shard-*-of-*/")
    p.add_argument("--out", type=Path, help="output directory (default: the single run directory given)")
    p.add_argument("--allow-missing", action="store_true", help="merge even if shards/episodes are missing")
    args = p.parse_args(argv)
    out = args.out
    if out is None:
        if len(args.dirs) != 1 or not _shard_subdirs(args.dirs[0]):
            p.error("--out is required unless a single run directory with shard-*-of-*/ is given")
        out = args.dirs[0]
    try:
        summary = merge(args.dirs, out, allow_missing=args.allow_missing)
    except (EvalError, ResultsError) as exc:
        print(f"eval-merge: error: {exc}", file=sys.stderr)
        return 1
    agg = summary["aggregate"]
    print((Path(out) / "summary.md").read_text())
    print(f"merged {agg['episodes']} episode(s) into {out}")
    return 1 if agg["errors"] else 0
