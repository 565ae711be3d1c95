"""Does the language model look at the camera? Attention routing and action-kind probes.

    vila-nav probe-instruction MODEL DATA --routing N

Two measurements on N decisions of an SFT dataset (drawn by their rebalancing weights, i.e. the
mix training sees; teacher-forced, stored frames), both at the position that predicts the
answer (the last prompt token):

attention    per LM layer, how that position's attention splits over the prompt's parts: text
             tokens, the history frames' visual tokens and the current frame's visual tokens,
             and the largest share any single position gets (each a mean over heads and
             decisions). In a collapsed layer each head puts nearly all of it on one position
             (mostly a text token); when every layer does, the answer is nearly the same
             whatever the frames show.
kind probes  softmax regressions of the expert answer's kind (forward / turn left / turn right /
             stop) fitted on the decisions of 3/4 of the episodes and scored on the other 1/4
             (held out by episode, so memorised frames do not count), from (a) the current
             frame's projected visual tokens (T x H, flattened) and (b) the LM's last hidden
             state at that position. Held-out NLL against the prior's (the training split's
             kind shares). If (a) is well below the prior and (b) is not, the tower sees what
             the answer needs and the LM does not carry it to the answer: a training problem of
             the LM (its attention), not of the vision tower or the data.

Figures only; nothing is asserted. torch only (no scikit-learn): the probes are a few hundred
full-batch Adam steps on at most a few thousand rows.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator, Sequence

import numpy as np

from vila_nav.actions import parse_action

PARTS = ("text", "history frames", "current frame")
# L2 strengths tried for each probe; the one with the best NLL on a held-out part of the
# training split is refitted on the whole training split.
_WEIGHT_DECAYS = (1e-2, 1e-1, 1.0, 10.0)
_PROBE_STEPS = 300


@dataclasses.dataclass
class RoutingResult:
    """attention: (layers, len(PARTS) + 1) mean shares (the last column: the largest single
    position's); probe_nll / probe_acc: held-out figures per feature set ("prior" included);
    n_train / n_test: decisions on each side of the episode split."""

    decisions: int
    attention: np.ndarray
    probe_nll: dict[str, float]
    probe_acc: dict[str, float]
    n_train: int
    n_test: int

    def table(self) -> str:
        rows = [f"Attention of the answer position, mean over {self.decisions} decisions and the heads:\n",
                "| layer | " + " | ".join(PARTS) + " | largest single position |",
                "|---" * (len(PARTS) + 2) + "|"]
        for i, shares in enumerate(self.attention):
            rows.append(f"| {i} | " + " | ".join(f"{v:.3f}" for v in shares) + " |")
        rows += ["", f"Answer kind from linear probes, held out by episode ({self.n_train} decisions to fit, "
                     f"{self.n_test} to score):\n",
                 "| features | held-out NLL (nats) | accuracy |", "|---|---|---|"]
        for name, nll in self.probe_nll.items():
            rows.append(f"| {name} | {nll:.3f} | {self.probe_acc[name]:.3f} |")
        return "\n".join(rows)


@contextlib.contextmanager
def eager_attention(llm: Any) -> Iterator[None]:
    """Run `llm` with the eager attention kernel (the only one that returns attention weights)."""
    before = llm.config._attn_implementation
    llm.set_attn_implementation("eager")
    try:
        yield
    finally:
        llm.set_attn_implementation(before)


def token_parts(prompt_ids: Sequence[int], tokens_per_frame: int, image_index: int) -> np.ndarray:
    """Per position of the expanded prompt (each image slot -> tokens_per_frame positions):
    0 text, 1 a history frame's token, 2 the current (last) frame's token."""
    parts: list[int] = []
    slots = [i for i, t in enumerate(prompt_ids) if t == image_index]
    for i, t in enumerate(prompt_ids):
        if t == image_index:
            parts += [2 if i == slots[-1] else 1] * tokens_per_frame
        else:
            parts.append(0)
    return np.asarray(parts)


def answer_routing(model: Any, frames: Sequence[np.ndarray], instruction: str):
    """One decision, inside eager_attention(model.llm) -> (shares, current, state):
    shares (layers, len(PARTS) + 1) float: per layer, the answer position's attention on each
    part (mean over heads) and the largest share one position gets (mean over heads);
    current (T, H) float32: the current frame's projected visual tokens;
    state (H,) float32: the LM's last hidden state at the answer position."""
    import torch

    from vila_nav.model.prompt import IMAGE_TOKEN_INDEX

    with torch.inference_mode():
        embeds = model.inputs_embeds(frames, instruction)  # (1, L, H): the decision's own LM input
        visual, _ = model.frame_tokens(frames)  # per frame (T, H), from the model's feature cache
        out = model.llm(inputs_embeds=embeds, output_attentions=True, output_hidden_states=True, use_cache=False)
    parts = token_parts(model.prompt_ids(instruction), visual[-1].shape[0], IMAGE_TOKEN_INDEX)
    shares = []
    for att in out.attentions:  # (1, heads, L, L)
        last = att[0, :, -1].float().cpu().numpy()  # (heads, L): the answer position's attention
        shares.append([last[:, parts == p].sum(axis=1).mean() for p in range(len(PARTS))] + [last.max(axis=1).mean()])
    return np.asarray(shares), visual[-1].float().cpu(), out.hidden_states[-1][0, -1].float().cpu()


def run_routing(model: Any, store: Any, decisions: int = 2000, seed: int = 0) -> RoutingResult:
    """Both measurements (module doc) on `decisions` decisions of `store` (any source), drawn at
    random (seed) without replacement in proportion to their rebalancing weights, i.e. from the
    mix training sees. ValueError when the data has decisions of fewer than 4 episodes (no
    held-out quarter) or the held-out decisions have fewer than 2 kinds."""
    import torch

    from vila_nav.training.collate import AUX_KINDS

    usable = [s for s in store.samples if parse_action(s.answer) is not None]
    episodes = sorted({s.episode_id for s in usable})
    if len(episodes) < 4:
        raise ValueError(f"the routing probe holds out a quarter of the episodes: the data needs decisions "
                         f"of 4 episodes or more, it has {len(episodes)}")
    rng = np.random.default_rng(seed)
    held_out = set(rng.permutation(episodes)[: len(episodes) // 4].tolist())
    weights = np.asarray([s.weight for s in usable], dtype=np.float64)  # the rebalanced training mix
    n = min(decisions, int((weights > 0).sum()))
    chosen = [usable[i] for i in sorted(rng.choice(len(usable), n, replace=False, p=weights / weights.sum()))]

    model.reset()
    shares, view, state, kinds, test = [], [], [], [], []
    with eager_attention(model.llm):
        for s in chosen:
            att, current, hidden = answer_routing(model, store.frames(s), s.instruction)
            shares.append(att)
            view.append(current.flatten())
            state.append(hidden)
            kinds.append(AUX_KINDS.index(parse_action(s.answer).kind))
            test.append(s.episode_id in held_out)
    y, is_test = torch.tensor(kinds), torch.tensor(test)
    if int(is_test.sum()) == 0 or int((~is_test).sum()) == 0 or len(set(y[is_test].tolist())) < 2:
        raise ValueError(f"{len(chosen)} decisions give too few held-out decisions of 2 kinds or more: "
                         "raise --routing or use data with more episodes")
    prior = torch.bincount(y[~is_test], minlength=len(AUX_KINDS)).float() + 0.5  # add-half smoothing
    prior_logp = torch.log(prior / prior.sum())
    nll = {"prior (the fitted decisions' kind shares)": float(-prior_logp[y[is_test]].mean())}
    acc = {"prior (the fitted decisions' kind shares)": float((y[is_test] == prior.argmax()).float().mean())}
    t = current.shape[0]
    for name, rows in ((f"current frame's visual tokens ({t} x {view[0].numel() // t})", view),
                       ("LM state at the answer position", state)):
        nll[name], acc[name] = _probe(torch.stack(rows), y, is_test, rng)
    return RoutingResult(len(chosen), np.asarray(shares).mean(axis=0), nll, acc,
                         int((~is_test).sum()), int(is_test.sum()))


def _probe(x, y, is_test, rng: np.random.Generator) -> tuple[float, float]:
    """Softmax regression of y from x: L2 chosen on a fifth of the training rows, refitted on all
    of them, scored on the test rows -> (NLL, accuracy)."""
    import torch

    train = (~is_test).nonzero()[:, 0]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    x = (x - mean) / std  # standardised on the training rows
    inner = torch.from_numpy(rng.permutation(len(train))).long()
    fit_rows, pick_rows = train[inner[len(train) // 5:]], train[inner[: len(train) // 5]]
    best = min(_WEIGHT_DECAYS, key=lambda wd: _fit_and_score(x, y, fit_rows, pick_rows, wd)[0]
               if len(pick_rows) else 0.0)
    return _fit_and_score(x, y, train, is_test.nonzero()[:, 0], best)


def _fit_and_score(x, y, fit_rows, score_rows, weight_decay: float) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    from vila_nav.training.collate import AUX_KINDS

    gen = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(x.shape[1], len(AUX_KINDS))
    with torch.no_grad():
        head.weight.normal_(0.0, 0.01, generator=gen)
        head.bias.zero_()
    opt = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=weight_decay)
    for _ in range(_PROBE_STEPS):
        opt.zero_grad()
        F.cross_entropy(head(x[fit_rows]), y[fit_rows]).backward()
        opt.step()
    with torch.no_grad():
        logits = head(x[score_rows])
        return float(F.cross_entropy(logits, y[score_rows])), float((logits.argmax(1) == y[score_rows]).float().mean())
