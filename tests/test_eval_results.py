"""Result files, sharding rules and tables of the evaluator (no simulator needed)."""
from __future__ import annotations

import json
import math

import pytest

from vila_nav.evaluation.results import (
    ResultsError,
    ResultsWriter,
    read_rows,
    results_table,
    summary_markdown,
)
from vila_nav.evaluation.runner import EvalError, episode_sort_key, make_summary, resolve_shard
from vila_nav.metrics import METRIC_KEYS


def _row(eid, **metrics):
    return {"episode_id": eid, "metrics": {**dict.fromkeys(METRIC_KEYS, 0.5), **metrics}}


def test_jsonl_round_trip_with_nonfinite_values_as_strict_json(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path) as w:
        w.write(_row("1", ne=math.inf))
        w.write(_row("2", ndtw=math.nan))
    text = path.read_text()
    assert "Infinity" not in text and '"ne":"inf"' in text
    for line in text.splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    rows, truncated = read_rows(path)
    assert not truncated and rows[0]["metrics"]["ne"] == math.inf and math.isnan(rows[1]["metrics"]["ndtw"])


def test_truncated_last_line_is_ignored_but_corruption_elsewhere_is_an_error(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultsWriter(path) as w:
        w.write(_row("1"))
        w.write(_row("2"))
    good = path.read_text()
    path.write_text(good + '{"episode_id": "3", "metr')
    rows, truncated = read_rows(path)
    assert truncated and [r["episode_id"] for r in rows] == ["1", "2"]
    # killed after the JSON but before its newline: the row parses, yet is still an interrupted
    # write; keeping it would glue the next appended row onto the same line
    path.write_text(good + json.dumps(_row("3")))
    rows, truncated = read_rows(path)
    assert truncated and [r["episode_id"] for r in rows] == ["1", "2"]
    path.write_text('{"episode_id": "1", "metr\n' + good)
    with pytest.raises(ResultsError, match=r"results.jsonl, line 1: corrupt"):
        read_rows(path)


def test_shard_resolution_from_config_and_launchers():
    assert resolve_shard(None, None, {}) == (0, 1, "default")
    assert resolve_shard(2, 4, {"RANK": "1", "WORLD_SIZE": "8"})[:2] == (2, 4)
    assert resolve_shard(None, None, {"RANK": "1", "WORLD_SIZE": "8"}) == (1, 8, "$RANK/$WORLD_SIZE")
    arr = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "3",
           "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}
    assert resolve_shard(None, None, arr)[:2] == (1, 3)
    assert resolve_shard(None, None, {"SLURM_PROCID": "3", "SLURM_NTASKS": "4"})[:2] == (3, 4)
    with pytest.raises(EvalError, match="0 <= index < count"):
        resolve_shard(None, None, {"RANK": "4", "WORLD_SIZE": "4"})


def test_episode_sort_key_is_numeric_then_text():
    ids = ["10", "2", "b", "1", "a"]
    assert sorted(ids, key=episode_sort_key) == ["1", "2", "10", "a", "b"]


def test_tables_show_percentages_and_nonfinite_counts():
    rows = [_row("1", ne=2.0, sr=1.0), _row("2", ne=math.inf, sr=0.0), {"episode_id": "3", "error": "X: y"}]
    summary = make_summary("oracle", {"format": "r2r", "split": "val_unseen", "path": "p"}, rows)
    table = results_table([("oracle", summary), ("again", summary)])
    header, _, first, second = table.strip().splitlines()
    assert header.startswith("|  | NE (m) | OS | SR | SPL | nDTW | SDTW | TL (m) | steps | episodes | errors |")
    assert first.startswith("| oracle | 2.00 (1 non-finite) | 50.0 | 50.0 |") and first.endswith("| 2 | 1 |")
    assert second.startswith("| again |")
    md = summary_markdown("oracle", summary)
    assert "- ne: 1 non-finite value(s), episodes: 2" in md and "1 episode(s) failed" in md
