"""The evaluator end to end on the real embedded simulator (MiniWorld) with small splits:
oracle SR 100%, shards merged == unsharded, resume after an interruption, plots/videos, and
clear non-zero exits for empty, failed and malformed runs."""
from __future__ import annotations

import copy
import gzip
import json
import math
from pathlib import Path

import pytest

from vila_nav.config import compose
from vila_nav.evaluation.config import EvalConfig
from vila_nav.evaluation.merge import main as merge_main
from vila_nav.evaluation.merge import merge
from vila_nav.evaluation.results import read_rows
from vila_nav.evaluation.runner import EvalError, EvalFailed, evaluate

N_EPISODES = 5


def _generate_split(root: Path, n: int, seed: int = 0, fmt: str = "r2r") -> Path:
    """A small val_unseen split made by the episode generator (real scenes, expert gt) under
    `root`; returns the dataset root of `fmt` (root/r2r or root/rxr)."""
    from vila_nav.episode_gen.config import EpisodeGenConfig
    from vila_nav.episode_gen.dataset import generate_split, write_split

    cfg = EpisodeGenConfig(r2r_episodes={"val_unseen": n}, rxr_episodes={"val_unseen": n}, seed=seed, workers=0)
    write_split(root, fmt, "val_unseen", generate_split(cfg, fmt, "val_unseen", progress=False))
    return Path(root) / fmt


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    return _generate_split(tmp_path_factory.mktemp("episodes"), N_EPISODES)


def _cfg(split: Path, out: Path, *overrides: str) -> EvalConfig:
    return compose(EvalConfig, "eval", [f"dataset.path={split}", f"output_dir={out}", "progress=false", *overrides])


def _strip(rows):
    """Rows without nothing volatile: they are fully deterministic, compare as they are."""
    return [json.dumps(r, sort_keys=True) for r in rows]


def test_oracle_reaches_sr_100_with_plots_and_videos(split, tmp_path):
    import cv2

    out = tmp_path / "oracle"
    report = evaluate(_cfg(split, out, "agent.name=oracle", "plots=true", "videos=true"))
    agg = report.summary["aggregate"]
    assert agg["evaluated"] == N_EPISODES and agg["errors"] == 0
    assert agg["mean"]["sr"] == 1.0 and agg["mean"]["os"] == 1.0 and agg["mean"]["ne"] < 1.0
    assert agg["mean"]["spl"] > 0.8 and agg["mean"]["ndtw"] > 0.8
    row = report.rows[0]
    assert row["stop_called"] and row["actions"][-1] == 0 and row["steps"] == len(row["actions"])
    assert len(row["trajectory"]) == row["steps"] + 1 == len(row["distances"])
    assert row["ndtw_reference"] == "gt"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["aggregate"]["mean"]["sr"] == 1.0
    assert "| oracle | " in (out / "summary.md").read_text()
    for e in range(1, N_EPISODES + 1):
        png = out / "plots" / f"{e}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cap = cv2.VideoCapture(str(out / "videos" / "1.mp4"))
    n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (224, 224, 3) and n_frames == report.rows[0]["steps"] + 1


def test_rows_count_the_primitives_a_wall_blocked(split, tmp_path):
    """`collisions` is the number of primitives the simulator blocked or shortened: for a forward
    walker, every MOVE_FORWARD that moved the agent less than its 0.25 m."""
    report = evaluate(_cfg(split, tmp_path / "fwd", "agent.name=forward", "sim.max_steps=60"))
    for row in report.rows:
        t = row["trajectory"]
        short = sum(math.hypot(b[0] - a[0], b[2] - a[2]) < 0.25 - 1e-3 for a, b in zip(t, t[1:]))
        assert row["collisions"] == short, row["episode_id"]
    total = sum(r["collisions"] for r in report.rows)
    assert total > 0  # 15 m of walking meets walls
    assert report.summary["collisions"] == {"total": total, "episodes_with_any": sum(r["collisions"] > 0 for r in report.rows),
                                            "episodes_counted": N_EPISODES}
    assert f"- collisions (primitives a wall or an object blocked or shortened): {total} in" in (
        tmp_path / "fwd" / "summary.md").read_text()
    oracle = evaluate(_cfg(split, tmp_path / "oracle", "agent.name=oracle"))
    assert all(r["collisions"] == 0 for r in oracle.rows)  # the expert keeps its clearance


def test_oracle_on_an_rxr_split_with_language_filter(tmp_path):
    root = _generate_split(tmp_path / "episodes", 2, fmt="rxr")
    report = evaluate(_cfg(root, tmp_path / "rxr", "agent.name=oracle", "dataset.format=rxr", "dataset.languages=[en]"))
    assert report.summary["aggregate"]["evaluated"] == 2 and report.summary["aggregate"]["mean"]["sr"] == 1.0
    assert report.summary["dataset"]["languages"] == ["en"] and report.rows[0]["language"].startswith("en")
    with pytest.raises(EvalError, match="no episodes to evaluate.*languages \\['te'\\]"):
        evaluate(_cfg(root, tmp_path / "te", "agent.name=oracle", "dataset.format=rxr", "dataset.languages=[te]"))


def test_shards_merged_equal_unsharded_run(split, tmp_path, capsys):
    common = ("agent.name=random", "agent.seed=3", "sim.max_steps=25")
    full = evaluate(_cfg(split, tmp_path / "full", *common))
    base = tmp_path / "sharded"
    for i in range(3):
        evaluate(_cfg(split, base, *common, f"shard.index={i}", "shard.count=3"))
    assert sorted(p.name for p in base.iterdir()) == ["shard-0-of-3", "shard-1-of-3", "shard-2-of-3"]
    assert [r["episode_id"] for r in read_rows(base / "shard-1-of-3" / "results.jsonl")[0]] == ["2", "5"]
    assert merge_main([str(base)]) == 0  # a run dir with shard-*-of-*/: merged into itself
    assert "merged 5 episode(s)" in capsys.readouterr().out
    merged_rows, _ = read_rows(base / "results.jsonl")
    assert _strip(merged_rows) == _strip(full.rows)
    merged = json.loads((base / "summary.json").read_text())
    assert merged["aggregate"] == json.loads((tmp_path / "full" / "summary.json").read_text())["aggregate"]
    assert merged["run"]["dataset_checked"] is True
    # a missing shard, or the same shard twice, is refused
    with pytest.raises(EvalError, match=r"shard\(s\) \[2\] of 3 missing"):
        merge([base / "shard-0-of-3", base / "shard-1-of-3"], tmp_path / "m1")
    with pytest.raises(EvalError, match="episode '1' appears in both"):
        merge([base / "shard-0-of-3", base / "shard-0-of-3"], tmp_path / "m2", allow_missing=True)


def test_shard_from_launcher_environment(split, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    report = evaluate(_cfg(split, tmp_path / "t", "agent.name=random", "sim.max_steps=5"))
    assert report.out_dir == tmp_path / "t" / "shard-1-of-2"
    assert [r["episode_id"] for r in report.rows] == ["2", "4"]


def test_resume_after_interruption_gives_the_same_result(split, tmp_path):
    common = ("agent.name=random", "agent.seed=1", "sim.max_steps=25")
    full = evaluate(_cfg(split, tmp_path / "full", *common))
    out = tmp_path / "resumed"
    evaluate(_cfg(split, out, *common))
    # What an interruption during episode 3's write leaves: two rows and half a line.
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(lines[:2]) + lines[2][:40])
    (out / "summary.json").unlink()
    report = evaluate(_cfg(split, out, *common))
    assert report.episodes_run == N_EPISODES - 2
    assert _strip(report.rows) == _strip(full.rows)
    assert report.summary["aggregate"] == full.summary["aggregate"]
    # nothing left to do: a rerun evaluates nothing new and gives the same summary
    again = evaluate(_cfg(split, out, *common))
    assert again.episodes_run == 0 and again.summary["aggregate"] == full.summary["aggregate"]
    # a speed setting may change on resume (one thread on a CPU that became busy)
    slower = evaluate(_cfg(split, out, *common, "agent.num_threads=1"))
    assert slower.episodes_run == 0 and slower.summary["aggregate"] == full.summary["aggregate"]
    # resuming with another configuration, or restarting without overwrite, is refused
    with pytest.raises(EvalError, match="different configuration.*agent"):
        evaluate(_cfg(split, out, "agent.name=random", "agent.seed=2", "sim.max_steps=25"))
    with pytest.raises(EvalError, match="already holds 5 episode"):
        evaluate(_cfg(split, out, *common, "resume=false"))


def test_failing_episode_is_recorded_and_the_run_exits_non_zero(split, tmp_path):
    data = json.loads(gzip.decompress((split / "val_unseen" / "val_unseen.json.gz").read_bytes()))
    data["episodes"][1]["scene_id"] = "no_such_scene"
    bad = tmp_path / "bad" / "val_unseen"
    bad.mkdir(parents=True)
    (bad / "val_unseen.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    with pytest.raises(EvalFailed, match="1 of 5 episode"):
        evaluate(_cfg(bad.parent, out, "agent.name=oracle"))
    rows, _ = read_rows(out / "results.jsonl")
    errors = {r["episode_id"]: r.get("error") for r in rows}
    assert len(rows) == 5 and "no_such_scene" in errors.pop("2") and not any(errors.values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["aggregate"]["errors"] == 1 and summary["aggregate"]["error_episodes"] == ["2"]
    # a resume retries only the failed episode (its old row is replaced, not duplicated)
    with pytest.raises(EvalFailed) as again:
        evaluate(_cfg(bad.parent, out, "agent.name=oracle"))
    assert again.value.report.episodes_run == 1 and len(read_rows(out / "results.jsonl")[0]) == 5
    # all episodes failing: no summary at all, a clear error
    for e in data["episodes"]:
        e["scene_id"] = "no_such_scene"
    (bad / "val_unseen.json").write_text(json.dumps(data))
    with pytest.raises(EvalError, match="no episode was evaluated successfully"):
        evaluate(_cfg(bad.parent, tmp_path / "out2", "agent.name=oracle"))
    assert not (tmp_path / "out2" / "summary.json").exists()


def test_cli_exit_codes_and_messages(split, tmp_path, capsys):
    from vila_nav.cli import main

    empty = tmp_path / "empty" / "val_unseen"
    empty.mkdir(parents=True)
    (empty / "val_unseen.json").write_text(json.dumps({"episodes": []}))
    out = tmp_path / "never"
    assert main(["eval", f"dataset.path={empty.parent}", f"output_dir={out}", "agent.name=oracle"]) == 1
    assert "no episodes to evaluate" in capsys.readouterr().err and not out.exists()

    data = json.loads(gzip.decompress((split / "val_unseen" / "val_unseen.json.gz").read_bytes()))
    broken = copy.deepcopy(data)
    broken["episodes"][2]["start_rotation"] = [0, 1, 0]
    (empty / "val_unseen.json").write_text(json.dumps(broken))
    assert main(["eval", f"dataset.path={empty.parent}", f"output_dir={out}", "agent.name=oracle"]) == 1
    err = capsys.readouterr().err
    assert "val_unseen.json, episode '3': field 'start_rotation' must be 4 numbers [x, y, z, w]" in err

    assert main(["eval", f"dataset.path={split}", f"output_dir={out}", "agent.name=oracle", "shard.index=7", "shard.count=9"]) == 1
    assert "shard 7 of 9" in capsys.readouterr().err and not out.exists()
    assert main(["eval", f"dataset.path={split}", f"output_dir={out}", "agent.name=vila", f"agent.model={tmp_path / 'none'}"]) == 1
    assert "cannot load the VILA model" in capsys.readouterr().err and not out.exists()
    assert main(["eval", "agent.name=teleport"]) == 2
    assert "agent.name must be one of" in capsys.readouterr().err

    ok = tmp_path / "ok"
    assert main(["eval", f"dataset.path={split}", f"output_dir={ok}", "agent.name=forward", "sim.max_steps=4",
                 "dataset.limit=2", "progress=false"]) == 0
    printed = capsys.readouterr().out
    assert "| forward | " in printed and "2 episode(s) run now" in printed
    rows, _ = read_rows(ok / "results.jsonl")
    assert [r["steps"] for r in rows] == [4, 4] and not any(r["stop_called"] for r in rows)

    assert main(["eval-table", str(ok), str(ok), "--names", "fwd", "again"]) == 0
    assert "| again | " in capsys.readouterr().out
