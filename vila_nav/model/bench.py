"""`vila-nav bench-model`: decision latency, feature cache, quantization, and NaVILA-8B arithmetic.

    vila-nav bench-model                       # the shipped model, else a random "small" model
    vila-nav bench-model --model PATH --modes fp32,int8 num_threads=1
    vila-nav bench-model --model /data/navila-8b --modes bf16,int4 --sequential device=cuda
    vila-nav bench-model --navila-8b-arithmetic  # only the 8B arithmetic (no model needed)

Each mode runs in its own process (so peak RSS is that mode's own) over the same fixed decision
set. By default all modes are loaded at once and take turns episode by episode (one busy at a
time), so on a shared machine every mode sees the same background load; `--sequential` keeps
one model in memory at a time (big models). The decision set (`decision_set`, written once and
read by every mode): `--episodes` episodes of `--steps` frames, by default the shortest-path
expert's views in the first shipped val_unseen episodes with their instructions (`--frames sim`;
seeded noise frames for the random model, `--frames random`), one decision per step with NaVILA's
frame sampling (after an episode's first decision exactly one frame is new: the steady state),
plus `--cold` decisions with an empty cache and K new frames. Printed as a markdown table: latency
p50/p95 (ms), decode tokens/s, vision-tower calls per decision, weight bytes, peak RSS, and
agreement with the reference mode ("fp32", else the first listed) on parsed actions (None
included) and on raw text; then where a steady-state decision's time goes (vision, prefill,
decode p50 per mode, each stage's speed-up against fp32). Figures are measurements on the
machine at hand; on a shared CPU pass num_threads=1. Mode "int8-torchao" forces torchao's
int8 weight-only backend (CUDA's int8) so that it can be compared with the CPU default; the
"int8-torchao-dynamic" modes use torchao's int8 x int8 (torch.ao dynamic int8's successor).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile
from pathlib import Path

import numpy as np

# label -> (dtype, quantization, quantize_vision, feature cache, torch.compile[, quantization backend])
# The optional backend overrides the device's default (vila_nav.model.quantize.backend_for).
MODES = {
    "fp32-nocache": ("float32", "none", False, False, False),  # NaVILA's behaviour: all frames every time
    "fp32": ("float32", "none", False, True, False),
    "bf16": ("bfloat16", "none", False, True, False),
    "int8": ("float32", "int8", False, True, False),  # CPU: torch.ao dynamic int8; CUDA: torchao weight-only
    "int8+vision": ("float32", "int8", True, True, False),
    "int8-torchao": ("float32", "int8", False, True, False, "torchao-int8-weight-only"),  # CUDA's int8, on any device
    "int4": ("float32", "int4", False, True, False),
    "nf4": ("float32", "nf4", False, True, False),
    # opt-in (tens of seconds of compilation per mode):
    "fp32-compiled": ("float32", "none", False, True, True),
    "int8-compiled": ("float32", "int8", False, True, True),
    "int8-torchao-compiled": ("float32", "int8", False, True, True, "torchao-int8-weight-only"),
    "int8-torchao-dynamic": ("float32", "int8", False, True, False, "torchao-int8-dynamic"),  # torch.ao's successor
    "int8-torchao-dynamic-compiled": ("float32", "int8", False, True, True, "torchao-int8-dynamic"),
}
DEFAULT_MODES = ("fp32-nocache", "fp32", "bf16", "int8", "int8+vision", "int8-torchao", "int4")


@dataclasses.dataclass
class ModeResult:
    mode: str
    backend: str
    cold_ms: list[float]
    steady_ms: list[float]
    decode_tok_s: float
    steady_vision_calls: float
    cold_vision_calls: float
    weight_bytes: int
    llm_weight_bytes: int
    peak_rss_mb: float
    texts: list[str]
    error: str = ""
    # steady-state decisions, per stage (ms): tower + projector, LM prefill, greedy decode
    vision_ms: list[float] = dataclasses.field(default_factory=list)
    prefill_ms: list[float] = dataclasses.field(default_factory=list)
    decode_ms: list[float] = dataclasses.field(default_factory=list)


FRAMES = ("sim", "random")


def decision_set(path: Path, kind: str, episodes: int, steps: int, cold: int, k: int) -> Path:
    """Write the fixed decision set to `path` (.npz, no pickles) and return it.

    kind "sim": frames along the shortest-path expert's route in the first shipped val_unseen
    episodes (224 x 224 MiniWorld renders, each episode's own instruction): what a trained model
    meets in use. "random": seeded uniform-noise frames with one fixed instruction (no simulator;
    the only sensible input for a random model). Episode e: (steps, H, W, 3); cold decision c:
    (k, H, W, 3) frames never seen before.
    """
    arrays: dict[str, np.ndarray] = {}
    runs = [("episode", e, steps) for e in range(episodes)] + [("cold", c, k) for c in range(cold)]
    if kind == "random":
        for name, i, n in runs:
            rng = np.random.default_rng((1000 if name == "episode" else 2000) + i)
            arrays[f"{name}_{i}"] = rng.integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)
            arrays[f"{name}_{i}_instruction"] = np.array(INSTRUCTION)
    elif kind == "sim":
        from vila_nav.envs import SimConfig, make_env
        from vila_nav.evaluation.config import DatasetConfig
        from vila_nav.evaluation.runner import select_episodes

        shipped = select_episodes(DatasetConfig(limit=len(runs)))
        if len(shipped) < len(runs):
            raise ValueError(f"--frames sim: {len(runs)} episodes needed, the shipped split has {len(shipped)}")
        env = make_env(SimConfig())
        try:
            for (name, i, n), ep in zip(runs, shipped):
                frames = [env.reset(ep)]
                while len(frames) < n:  # the expert's route; at its end the view repeats
                    action = env.expert_action()
                    frames.append(env.step(action) if action != "STOP" else frames[-1])
                arrays[f"{name}_{i}"] = np.stack(frames)
                arrays[f"{name}_{i}_instruction"] = np.array(ep.instruction.text)
        finally:
            env.close()
    else:
        raise ValueError(f"frames must be one of {FRAMES}, got {kind!r}")
    np.savez(path, **arrays)
    return path


def _load_set(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _sample(history: list[np.ndarray], k: int) -> list[np.ndarray]:
    from vila_nav.frames import sample_indices

    black = np.zeros_like(history[-1])
    return [history[i] if i is not None else black for i in sample_indices(len(history), k)]


INSTRUCTION = "Walk past the table, turn left at the door and stop next to the plant."


class _Runner:
    """One mode's model and the fixed decision set (lives in its own process)."""

    def __init__(self, path: str, mode: str, overrides: list[str], frames_file: str):
        import warnings

        warnings.filterwarnings("ignore")
        from vila_nav.config import compose
        from vila_nav.model.checkpoint import load_from_config
        from vila_nav.model.config import ModelConfig

        dtype, quant, qvis, use_cache, compiled, *backend = MODES[mode]
        fixed = [f"path={path}", f"dtype={dtype}", f"quantization={quant}", f"quantize_vision={qvis}",
                 f"compile={compiled}", f"quantization_backend={backend[0] if backend else ''}"]
        self.model = load_from_config(compose(ModelConfig, "model", [*overrides, *fixed]))
        self.model.use_feature_cache = use_cache
        self.set = _load_set(frames_file)
        self.k = self.model.num_frames
        warm = self.set["episode_0"][:2]
        for t in (1, 2):  # warm-up: allocations, compilation
            self.model.generate(_sample(list(warm[:t]), self.k), INSTRUCTION)
        self.model.reset()

    def episode(self, index: int) -> dict:
        """Decisions 1..steps of episode `index`: texts, steady latencies, tower calls."""
        ep = list(self.set[f"episode_{index}"])
        instruction = str(self.set[f"episode_{index}_instruction"])
        self.model.reset()
        out = {"texts": [], "steady_ms": [], "calls": [], "tokens": 0, "decode_s": 0.0, "stages": []}
        for t in range(1, len(ep) + 1):
            out["texts"].append(self.model.generate(_sample(ep[:t], self.k), instruction))
            s = self.model.last_stats
            out["tokens"] += s["new_tokens"]
            out["decode_s"] += s["decode_s"]
            if t > 1:  # steady state: exactly one new frame
                out["steady_ms"].append(s["latency_s"] * 1000)
                out["calls"].append(s["vision_calls"])
                out["stages"].append((s["vision_s"] * 1000, s["prefill_s"] * 1000, s["decode_s"] * 1000))
        return out

    def cold(self, index: int) -> tuple[float, int]:
        """One decision on k new frames with an empty cache: (latency ms, tower calls)."""
        frames = list(self.set[f"cold_{index}"][-self.k:])
        self.model.reset()
        self.model.generate(frames, str(self.set[f"cold_{index}_instruction"]))
        return self.model.last_stats["latency_s"] * 1000, self.model.last_stats["vision_calls"]

    def summary(self) -> dict:
        import resource

        from vila_nav.model.quantize import weight_bytes

        m = self.model
        return {
            "backend": m.quantization_backend or str(m.dtype).replace("torch.", ""),
            "weight_bytes": weight_bytes(m),
            "llm_weight_bytes": weight_bytes(m.llm),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def _serve(conn, path: str, mode: str, overrides: list[str], frames_file: str) -> None:
    """Child process: build a _Runner, then answer (method, argument) requests until "stop"."""
    try:
        runner = _Runner(path, mode, overrides, frames_file)
    except Exception as exc:  # noqa: BLE001 - reported in the table (e.g. a mode this device lacks)
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", ""))
    while True:
        method, arg = conn.recv()
        if method == "stop":
            conn.send(runner.summary())
            return
        conn.send(getattr(runner, method)(arg))


class _Merge:
    """Accumulates one mode's answers into a ModeResult."""

    def __init__(self, mode: str):
        self.mode = mode
        self.parts: list[dict] = []
        self.cold: list[tuple[float, int]] = []

    def result(self, summary: dict) -> ModeResult:
        tok = sum(p["tokens"] for p in self.parts)
        dec = sum(p["decode_s"] for p in self.parts)
        calls = [c for p in self.parts for c in p["calls"]]
        stages = [st for p in self.parts for st in p["stages"]]
        return ModeResult(
            mode=self.mode,
            backend=summary["backend"],
            cold_ms=[ms for ms, _ in self.cold],
            steady_ms=[x for p in self.parts for x in p["steady_ms"]],
            decode_tok_s=tok / dec if dec else 0.0,
            steady_vision_calls=float(np.mean(calls)) if calls else float("nan"),
            cold_vision_calls=float(np.mean([c for _, c in self.cold])) if self.cold else float("nan"),
            weight_bytes=summary["weight_bytes"],
            llm_weight_bytes=summary["llm_weight_bytes"],
            peak_rss_mb=summary["peak_rss_mb"],
            texts=[t for p in self.parts for t in p["texts"]],
            vision_ms=[v for v, _, _ in stages],
            prefill_ms=[p for _, p, _ in stages],
            decode_ms=[d for _, _, d in stages],
        )


def _run_mode(path: str, mode: str, overrides: list[str], frames_file: str, episodes: int, cold: int) -> ModeResult:
    """One mode, in this process (for tests and quick checks)."""
    runner, merge = _Runner(path, mode, overrides, frames_file), _Merge(mode)
    merge.parts = [runner.episode(e) for e in range(episodes)]
    merge.cold = [runner.cold(c) for c in range(cold)]
    return merge.result(runner.summary())


def run_modes(path: str, modes: list[str], overrides: list[str], frames_file: str, episodes: int, cold: int,
              interleave: bool = True) -> list[ModeResult]:
    """Each mode in its own process. interleave: all loaded at once, episodes run round-robin (one
    process busy at a time), so every mode sees the same background load on a shared machine;
    otherwise one mode after the other (one model in memory at a time, for big models)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    results: dict[str, ModeResult] = {}

    def start(mode):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, path, mode, overrides, frames_file), daemon=True)
        proc.start()
        status, msg = parent.recv()
        if status == "error":
            proc.join()
            results[mode] = ModeResult(mode, "", [], [], 0.0, 0.0, 0.0, 0, 0, 0.0, [], error=msg)
            return None
        return proc, parent, _Merge(mode)

    def drive(workers: dict, jobs: list[tuple[str, int]]):
        for n, (method, arg) in enumerate(jobs):
            names = list(workers)
            order = names[n % len(names):] + names[: n % len(names)]  # rotate: no mode always first
            for mode in order:
                _proc, conn, merge = workers[mode]
                conn.send((method, arg))
                answer = conn.recv()
                (merge.parts if method == "episode" else merge.cold).append(answer)

    def finish(workers: dict):
        for mode, (proc, conn, merge) in workers.items():
            conn.send(("stop", None))
            results[mode] = merge.result(conn.recv())
            proc.join()
            print(f"  {mode}: steady p50 {_pct(results[mode].steady_ms, 50):.0f} ms", flush=True)

    jobs = [("episode", e) for e in range(episodes)] + [("cold", c) for c in range(cold)]
    groups = [modes] if interleave else [[m] for m in modes]
    for group in groups:
        workers = {}
        for mode in group:
            w = start(mode)
            if w is not None:
                workers[mode] = w
            else:
                print(f"  {mode}: {results[mode].error}", flush=True)
        if workers:
            drive(workers, jobs)
            finish(workers)
    return [results[m] for m in modes]


def _agreement(same: list[bool]) -> str:
    """The share, rounded down, and the count, e.g. "97% (195/200)": a share rounded to nearest
    would show 199 of 200 as 100% and hide which side of a target it is on."""
    return f"{math.floor(100 * sum(same) / max(1, len(same)))}% ({sum(same)}/{len(same)})"


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def results_table(results: list[ModeResult]) -> str:
    """Markdown table of the modes; ratios and agreement against the "fp32" row (else the first)."""
    from vila_nav.actions import parse_action

    ok = [r for r in results if not r.error]
    ref = next((r for r in ok if r.mode == "fp32"), ok[0] if ok else None)
    ref_actions = [parse_action(t) for t in ref.texts] if ref else []
    base_steady = _pct(ref.steady_ms, 50) if ref else float("nan")
    base_bytes = ref.weight_bytes if ref else 0
    head = (
        f"| mode | backend | cold p50 / p95 ms | steady p50 / p95 ms | speed-up vs {ref.mode if ref else '-'} "
        "(steady p50) | decode tok/s | tower calls / decision (steady, cold) | weights MB (LLM) "
        f"| size vs {ref.mode if ref else '-'} | peak RSS MB | action agreement | text agreement |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        if r.error:
            lines.append(f"| {r.mode} | unavailable: {r.error} |" + " |" * (head.count("|") - 3))
            continue
        if ref and len(r.texts) == len(ref.texts):
            acts = [parse_action(t) for t in r.texts]
            act_agree = _agreement([a == b for a, b in zip(acts, ref_actions)])
            txt_agree = _agreement([a == b for a, b in zip(r.texts, ref.texts)])
        else:
            act_agree = txt_agree = "-"
        p50 = _pct(r.steady_ms, 50)
        lines.append(
            f"| {r.mode} | {r.backend} | {_pct(r.cold_ms, 50):.0f} / {_pct(r.cold_ms, 95):.0f} "
            f"| {p50:.0f} / {_pct(r.steady_ms, 95):.0f} | {base_steady / p50:.2f}x | {r.decode_tok_s:.0f} "
            f"| {r.steady_vision_calls:.2f}, {r.cold_vision_calls:.0f} | {r.weight_bytes / 1e6:.1f} ({r.llm_weight_bytes / 1e6:.1f}) "
            f"| {base_bytes / r.weight_bytes:.2f}x smaller | {r.peak_rss_mb:.0f} | {act_agree} | {txt_agree} |"
        )
    return "\n".join(lines)


def stages_table(results: list[ModeResult]) -> str:
    """Markdown table: where a steady-state decision's time goes, per mode (p50 of each stage, ms),
    and each stage's speed-up against the "fp32" row (else the first)."""
    ok = [r for r in results if not r.error and r.steady_ms]
    ref = next((r for r in ok if r.mode == "fp32"), ok[0] if ok else None)
    head = (
        "| mode | vision p50 ms | prefill p50 ms | decode p50 ms (per token) | decode share "
        f"| vision / prefill / decode speed-up vs {ref.mode if ref else '-'} |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    if ref is None:
        return "\n".join(lines)
    base = [_pct(ref.vision_ms, 50), _pct(ref.prefill_ms, 50), _pct(ref.decode_ms, 50)]
    for r in ok:
        v, p, d = _pct(r.vision_ms, 50), _pct(r.prefill_ms, 50), _pct(r.decode_ms, 50)
        per_tok = 1000 / r.decode_tok_s if r.decode_tok_s else float("nan")  # ms per decoded token
        ratios = " / ".join(f"{b / x:.2f}x" if x else "-" for b, x in zip(base, (v, p, d)))
        lines.append(
            f"| {r.mode} | {v:.1f} | {p:.1f} | {d:.1f} ({per_tok:.2f}) | {100 * d / _pct(r.steady_ms, 50):.0f}% | {ratios} |"
        )
    return "\n".join(lines)


# -- NaVILA-8B arithmetic -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Navila8B:
    """Sizes from the released navila-llama3-8b-8f config (see navila.md)."""

    v_hidden: int = 1152  # SigLIP so400m-patch14-384
    v_layers: int = 27
    v_used: int = 26  # hidden_states[-2]: layers run up to the selected one
    v_inter: int = 4304
    v_tokens: int = 729  # (384 / 14)^2 = 27 x 27
    patch: int = 14
    proj_tokens: int = 196  # 14 x 14 after the 2x2 downsample
    hidden: int = 4096  # Llama-3-8B
    layers: int = 32
    inter: int = 14336
    heads: int = 32
    kv_heads: int = 8
    vocab: int = 128259
    frames: int = 8
    text_tokens: int = 180  # estimate: system + question + a one-sentence instruction
    new_tokens: int = 11  # "The next action is move forward 75 cm." + <|eot_id|>


def navila_8b_arithmetic(c: Navila8B = Navila8B()) -> str:
    """Per-decision FLOPs with and without the feature cache, and weight bytes per mode (markdown)."""
    d, n = c.v_hidden, c.v_tokens
    # One SigLIP layer on one frame, multiply-accumulates: q,k,v,o (4 n d^2), scores + mix
    # (2 n^2 d), MLP (2 n d I).
    v_layer = 4 * n * d * d + 2 * n * n * d + 2 * n * d * c.v_inter
    patch_embed = n * 3 * c.patch * c.patch * d
    frame_used = 2 * (c.v_used * v_layer + patch_embed)  # FLOPs = 2 x MACs
    frame_all = 2 * (c.v_layers * v_layer + patch_embed)  # NaVILA runs all 27 and drops the last
    proj = 2 * c.proj_tokens * (4 * d * c.hidden + c.hidden * c.hidden)
    h, kv = c.hidden, c.hidden * c.kv_heads // c.heads
    layer_params = 2 * h * h + 2 * h * kv + 3 * h * c.inter  # q,o + k,v + gate,up,down
    body = c.layers * layer_params
    head = h * c.vocab
    L = c.frames * c.proj_tokens + c.text_tokens
    prefill = 2 * body * L + 2 * c.layers * L * L * h  # causal attention: ~L^2 d MACs per layer (QK + AV, halved)
    prefill_logits_all = 2 * head * L  # NaVILA (transformers 4.37) computes logits at every prompt position
    decode = c.new_tokens * (2 * (body + head) + 4 * c.layers * L * h)
    vis8, vis1 = c.frames * frame_all, frame_used
    navila = vis8 + c.frames * proj + prefill + prefill_logits_all + decode
    ours = vis1 + proj + prefill + 2 * head + decode
    T = 1e12
    rows = [
        "| per decision (8 frames, ~%d prompt tokens, %d new tokens) | NaVILA (no cache) | vila_nav (feature cache) |" % (L, c.new_tokens),
        "|---|---|---|",
        f"| vision tower | {vis8 / T:.2f} TFLOP (8 frames x {c.v_layers} layers) | {vis1 / T:.2f} TFLOP (1 frame x {c.v_used} layers) |",
        f"| projector | {c.frames * proj / T:.3f} TFLOP | {proj / T:.3f} TFLOP |",
        f"| LLM prefill ({L} tokens) | {(prefill + prefill_logits_all) / T:.2f} TFLOP (logits at all {L} positions) | {(prefill + 2 * head) / T:.2f} TFLOP (last position only) |",
        f"| LLM decode ({c.new_tokens} tokens) | {decode / T:.2f} TFLOP | {decode / T:.2f} TFLOP |",
        f"| **total** | **{navila / T:.1f} TFLOP** | **{ours / T:.1f} TFLOP ({100 * (1 - ours / navila):.0f}% less)** |",
    ]
    # Weight bytes. Quantized modes quantize the LLM's linear layers; embeddings, lm_head, vision
    # tower and projector stay bf16.
    v_params = c.v_layers * (4 * d * d + 4 * d + 2 * d * c.v_inter + c.v_inter + d + 4 * d) + 3 * c.patch**2 * d + d + n * d + 2 * d
    p_params = 4 * d * 2 + 4 * d * h + h + h * h + h
    emb = 2 * h * c.vocab
    rows_per_layer = h + kv + kv + h + c.inter + c.inter + h  # output channels of the 7 linears
    other = (v_params + p_params + emb + c.layers * 2 * h + h) * 2  # bf16 bytes
    modes = {
        "fp16 / bf16": body * 2,
        "int8 (per-channel bf16 scale)": body + c.layers * rows_per_layer * 2,
        "int4 (group 128, bf16 scale + zero)": body // 2 + (body // 128) * 4,
        "nf4 (block 64, fp32 absmax)": body // 2 + (body // 64) * 4,
    }
    G = 1e9
    wrows = [
        "| weights | LLM linears | everything else (bf16) | total |",
        "|---|---|---|---|",
    ]
    for name, b in modes.items():
        wrows.append(f"| {name} | {b / G:.2f} GB | {other / G:.2f} GB | **{(b + other) / G:.2f} GB** |")
    notes = (
        f"Parameters: LLM linears {body / 1e9:.2f} B, embeddings + lm_head {emb / 1e9:.2f} B, "
        f"vision tower {v_params / 1e9:.3f} B, projector {p_params / 1e6:.1f} M. "
        f"One SigLIP frame = {frame_used / T:.2f} TFLOP; the prefill of {L} tokens dominates a decision."
    )
    return "\n".join(rows) + "\n\n" + "\n".join(wrows) + "\n\n" + notes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="vila-nav bench-model",
        description="Benchmark the VILA model (latency, feature cache, quantization) and print NaVILA-8B arithmetic.",
        epilog="key=value arguments override config/model.yaml (e.g. num_threads=1 device=cuda).",
    )
    parser.add_argument("--model", help="checkpoint directory; default: the shipped model, else a random 'small' model")
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES), help=f"comma-separated, from {list(MODES)}")
    parser.add_argument("--episodes", type=int, default=5, help="episodes of the fixed decision set")
    parser.add_argument("--steps", type=int, default=10, help="decisions per episode")
    parser.add_argument("--cold", type=int, default=10, help="cold decisions (cache cleared, all frames new)")
    parser.add_argument("--frames", choices=FRAMES, default=None,
                        help="sim: the expert's views in shipped val_unseen episodes (default with a trained model); "
                             "random: seeded noise frames (default for the random model)")
    parser.add_argument(
        "--sequential", action="store_true",
        help="one mode at a time (one model in memory; for big models) instead of interleaving all modes",
    )
    parser.add_argument("--navila-8b-arithmetic", action="store_true", help="print only the NaVILA-8B arithmetic")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of config/model.yaml")
    args = parser.parse_intermixed_args(argv)  # flags may follow the positional inputs

    if args.navila_8b_arithmetic:
        print(navila_8b_arithmetic())
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    from vila_nav.model.checkpoint import default_model_path

    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            path, what = Path(args.model), args.model
        else:
            try:
                path, what = default_model_path(), "shipped model"
            except FileNotFoundError:
                from vila_nav.model.testing import build_random

                path, what = build_random("small", Path(tmp) / "small"), "random model, 'small' preset"
        frames = args.frames or ("random" if what.startswith("random") else "sim")
        from vila_nav.model.config import VilaConfig

        k = VilaConfig.from_file(Path(path) / "config.json").num_video_frames
        frames_file = decision_set(Path(tmp) / "decisions.npz", frames, args.episodes, args.steps, args.cold, k)
        print(f"# vila-nav bench-model: {what}\n")
        source = ("the expert's views in the first shipped val_unseen episodes, with their instructions"
                  if frames == "sim" else "seeded random frames, one instruction")
        print(
            f"{args.episodes} episodes x {args.steps} decisions (steady state = decisions after the first "
            f"of each episode), {args.cold} cold decisions; frames: {source}; modes "
            f"{'one after the other' if args.sequential else 'interleaved'}; overrides: {args.overrides or 'none'}\n"
        )
        results = run_modes(
            str(path), modes, list(args.overrides), str(frames_file), args.episodes, args.cold,
            interleave=not args.sequential,
        )
    print()
    print(results_table(results))
    print("\n### Where a steady-state decision's time goes\n")
    print(stages_table(results))
    print("\n## NaVILA-8B by arithmetic\n")
    print(navila_8b_arithmetic())
    return 0
