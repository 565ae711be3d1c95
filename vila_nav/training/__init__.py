"""vila_nav.training: the recipe that produces a navigation VILA model.

Two commands, one concept per file:

    vila-nav build-sft dataset.path=/data/episodes/r2r          # expert + recovery SFT data on disk
    vila-nav train data.train=[runs/sft/r2r-train]              # SFT of the VILA model (accelerate)

Data side (numpy; no torch): `sft_config` (schema of build-sft), `rollout` (expert and perturbed
rollouts in a NavEnv: decision points and their labels), `rebalance` (label rebalancing by
repetition), `store` (the on-disk SFT format: shards of safetensors frames + samples.jsonl +
manifest.json, writer and reader), `sft_builder` and `sft_command` (`vila-nav build-sft`).

Model side (torch): `train_config` (schema of train), `sampler` (deterministic, resumable,
rank-sliced batch order), `collate` (samples -> unique frames + token ids with image slots and
answer-only labels), `objective` (the composed forward pass and the loss), `trainable` (which
parts train), `initial_model` (from scratch with a trained tokenizer, or a NaVILA-layout
checkpoint), `state` (optimizer / scheduler / RNG state as safetensors + JSON, no pickle),
`validation`, `curve` (loss-curve PNG), `trainer` (the loop) and `train_command` (`vila-nav train`).
"""
