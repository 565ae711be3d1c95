"""Evaluation result files: per-episode JSONL, summary JSON and markdown tables.

Layout of one run (or one shard) directory:

    results.jsonl   one JSON object per finished episode, appended and flushed (fsync) as soon
                    as the episode ends, so an interrupted run keeps everything it finished
    run.json        the resolved configuration (written at start; resume checks it matches)
    summary.json    aggregate metrics (vila_nav.metrics.aggregate) + run facts
    summary.md      the same as a markdown table

Strict JSON everywhere: non-finite floats are written as the strings "inf", "-inf", "nan" and
read back as floats (Python's bare Infinity/NaN tokens break other JSON readers).
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vila_nav.metrics import METRIC_KEYS

log = logging.getLogger(__name__)

RESULTS = "results.jsonl"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
RUN_JSON = "run.json"

_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class ResultsError(RuntimeError):
    """A results file or directory that cannot be used (corrupt, inconsistent, empty)."""


def encode(value: Any) -> Any:
    """JSON-able copy of `value` with non-finite floats as strings (tuples become lists)."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return encode(value.item())
    return value


def decode_metrics(row: dict) -> dict:
    """Turn the non-finite strings of row["metrics"] back into floats (in place; returns row)."""
    metrics = row.get("metrics")
    if isinstance(metrics, dict):
        for k, v in metrics.items():
            if isinstance(v, str) and v in _NONFINITE:
                metrics[k] = _NONFINITE[v]
    return row


def dumps(value: Any) -> str:
    """Strict, compact, key-order-preserving JSON."""
    return json.dumps(encode(value), allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def write_json(path: Path, value: Any) -> None:
    """Write pretty strict JSON atomically (tmp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(encode(value), allow_nan=False, ensure_ascii=False, indent=2) + "\n")
    tmp.replace(path)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


class ResultsWriter:
    """Appends one row per episode to results.jsonl, flushed and fsynced per row."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, row: Mapping[str, Any]) -> None:
        self._f.write(dumps(row) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(path: Path) -> tuple[list[dict], bool]:
    """Rows of a results.jsonl and whether its last line was truncated (then ignored, logged).

    A truncated last line is what an interruption mid-write leaves. A bad line anywhere else, or
    a row without an episode_id, is corruption: ResultsError naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        return [], False
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    rows: list[dict] = []
    truncated = False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        is_last = all(not rest.strip() for rest in lines[i + 1:])
        if is_last and not text.endswith("\n"):
            # Every row is written with its newline; a last line without one is an interrupted
            # write even when it happens to parse (the episode runs again on resume).
            log.warning("%s: ignoring truncated last line %d (an interrupted write)", path, i + 1)
            truncated = True
            break
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "episode_id" not in row:
                raise ValueError("not a results row (no episode_id)")
        except ValueError as exc:
            raise ResultsError(f"{path}, line {i + 1}: corrupt results row ({exc})") from exc
        rows.append(decode_metrics(row))
    return rows, truncated


def rewrite_rows(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace results.jsonl by `rows` atomically (used to drop a truncated line or error rows)."""
    write_text(Path(path), "".join(dumps(r) + "\n" for r in rows))


# ---- tables ---------------------------------------------------------------------------------

# (key, header, scale, decimals): fractions are shown in percent like the VLN-CE papers.
_COLUMNS = (
    ("ne", "NE (m)", 1.0, 2),
    ("os", "OS", 100.0, 1),
    ("sr", "SR", 100.0, 1),
    ("spl", "SPL", 100.0, 1),
    ("ndtw", "nDTW", 100.0, 1),
    ("sdtw", "SDTW", 100.0, 1),
    ("tl", "TL (m)", 1.0, 2),
    ("steps", "steps", 1.0, 1),
)
assert tuple(c[0] for c in _COLUMNS) == METRIC_KEYS


def _cell(agg: Mapping[str, Any], key: str, scale: float, decimals: int) -> str:
    mean = agg["mean"].get(key)
    text = "-" if mean is None else f"{mean * scale:.{decimals}f}"
    bad = agg["nonfinite"].get(key, 0)
    return f"{text} ({bad} non-finite)" if bad else text


def results_table(summaries: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """One markdown table, a row per (name, summary): NE OS SR SPL nDTW SDTW TL steps, the
    episode count and errors. Means over finite values; non-finite counts shown in the cell.

    summary: a summary.json object (or anything with an "aggregate" key as metrics.aggregate).
    """
    header = ["", *(c[1] for c in _COLUMNS), "episodes", "errors"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, summary in summaries:
        agg = summary["aggregate"]
        cells = [name, *(_cell(agg, k, s, d) for k, s, d in ((c[0], c[2], c[3]) for c in _COLUMNS))]
        cells += [str(agg["evaluated"]), str(agg["errors"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_markdown(name: str, summary: Mapping[str, Any]) -> str:
    """summary.md: the table plus the non-finite and error policy lines."""
    agg = summary["aggregate"]
    ds = summary.get("dataset", {})
    title = f"# Evaluation: {name}"
    lines = [title, ""]
    if ds:
        lines += [f"dataset: {ds.get('format')} {ds.get('split')} ({ds.get('path')})", ""]
    lines += [results_table([(name, summary)])]
    lines += ["OS/SR/SPL/nDTW/SDTW in %, NE/TL in m; means over finite values (VLN-CE semantics)."]
    no_gt = summary.get("ndtw_reference", {}).get("reference_path", 0)
    if no_gt:
        lines.append(f"- nDTW of {no_gt} episode(s) is against the reference path (no ground-truth file was found)")
    coll = summary.get("collisions", {})
    if coll.get("episodes_counted"):
        lines.append(f"- collisions (primitives a wall or an object blocked or shortened): {coll['total']} in "
                     f"{coll['episodes_with_any']} of {coll['episodes_counted']} episodes")
    for key, ids in agg["nonfinite_episodes"].items():
        shown = ", ".join(ids[:20]) + (" ..." if len(ids) > 20 else "")
        lines.append(f"- {key}: {len(ids)} non-finite value(s), episodes: {shown}")
    if agg["errors"]:
        shown = ", ".join(agg["error_episodes"][:20]) + (" ..." if agg["errors"] > 20 else "")
        lines.append(f"- {agg['errors']} episode(s) failed with an error (see results.jsonl): {shown}")
    return "\n".join(lines) + "\n"


def load_summary(path: Path) -> dict:
    """A summary.json (path to the file or to its run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_JSON
    if not path.is_file():
        raise ResultsError(f"no summary at {path}")
    return json.loads(path.read_text(encoding="utf-8"))
