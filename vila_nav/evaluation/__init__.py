"""Evaluation of navigation agents on VLN-CE episodes (`vila-nav eval`).

One concept per module: config (EvalConfig schema), agents (VILA policy + baselines), runner
(episode loop, resume, sharding), results (JSONL/summary files, tables), merge (shards -> one
run), plots (top-down PNGs), videos (MP4s), compare (`vila-nav eval-table`), bench
(`vila-nav bench-eval`), command (`vila-nav eval`). Metrics are in vila_nav.metrics and episode
files in vila_nav.episodes. Modules are imported on use, so this package imports nothing heavy.
"""
