"""`vila-nav probe-instruction`: does a model read the instruction? The instruction-swap probe.

    vila-nav probe-instruction MODEL DATA [--decisions N] [--seed S] [--device D]
        [--match-head STEP_CHECKPOINT [--match-range-m M] [--match-decisions N]] [--stop-profile ROLLOUTS]
        [--routing DECISIONS]

Teacher-forced on an SFT dataset's stored frames, the model scores every answer of the data's
answer vocabulary (the sum of its tokens' log-probabilities after the prompt, normalised over
the vocabulary: P(answer), whatever the tokenizer splits it into) once with the decision's own
instruction and once with another episode's. Two groups of decisions where only the
instruction says what is right:

    first  the first decision of each expert rollout ("Turn left and ..." -> turn left)
    stop   the expert's stop decisions (the view alone does not say which landmark is the goal)

For each group it prints the mean P(expert's answer) with the own and the swapped instruction
and how often the own one is higher: a model that reads the instruction is well above 50%
there, one that ignores it sits at 50% (chance). A random other instruction often asks for the
same first turn, and many first turns ("turn around", "exit the room") depend on the view, so
this figure understates how well the side of a turn is read. For the stop group it also prints
P(stop) one decision earlier: a model that knows where the goal is gives the stop more weight
at the stop than just before it.

The mirror test is the sharp one for turns: at the first decisions where the expert turns to
the side the instruction names first ("Take a left ..." and the expert turns left), the model
answers (greedy) once with the instruction and once with "left" and "right" exchanged in it.
A model that reads the side turns the expert's way with the first and the other way with the
second; one that ignores it turns the same way with both (the two counts then add up to the
number of decisions). Figures only; nothing is asserted.

With `--match-head STEP_CHECKPOINT` (a training run's step checkpoint, whose trainer_state/ holds
the goal-match head of `aux.match_weight`) it also asks whether that head reads the instruction.
On expert decisions whose instruction's last sentence names an object the data records, it
scores the head's logit once with the own instruction and once with another episode's, both
against the own label (the named goal in view within --match-range-m): the AUC with the own
instruction says how well the head predicts its target; if the AUC with another episode's
instruction is as high, the head predicts it from the frames alone (for example "the episode
is nearly over, so some landmark is close"), not by comparing the goal with the view. A head
that reads the goal falls towards 0.5 there (not all the way: a near landmark in view makes
any goal more likely to be near).

With `--stop-profile ROLLOUTS` it also prints P(stop) at every decision of that many expert
rollouts, grouped by how many decisions before the stop it comes, and how often the stop is the
likeliest answer there (what greedy decoding would say): a model that knows where the goal is
peaks at the stop; one that stays near the data's share of stops everywhere has learnt nothing
about it. On the training data itself this tells underfitting (no peak) from overfitting.

With `--routing DECISIONS` it also prints where the answer position's attention goes (text, history
frames, current frame) per LM layer, and held-out linear probes of the answer's kind from the
current view and from the LM's state (routing.py): does the LM carry what the tower sees?
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from typing import Any, Sequence

import numpy as np

from vila_nav.actions import parse_action
from vila_nav.training.routing import run_routing

STOP_KIND = "stop"


@dataclasses.dataclass
class GroupResult:
    """One group of decisions: per decision, P(expert's answer) own / swapped instruction."""

    name: str
    own: list[float]
    swapped: list[float]
    before: list[float] = dataclasses.field(default_factory=list)  # stop group: P(stop) one decision earlier

    def row(self) -> str:
        n = len(self.own)
        if n == 0:
            return f"| {self.name} | 0 | - | - | - | - |"
        higher = sum(a > b for a, b in zip(self.own, self.swapped))
        before = f"{np.mean(self.before):.3f}" if self.before else "-"
        return (f"| {self.name} | {n} | {np.mean(self.own):.3f} | {np.mean(self.swapped):.3f} | "
                f"{higher} of {n} ({100 * higher / n:.0f}%) | {before} |")


@dataclasses.dataclass
class MirrorResult:
    """First decisions where the expert turns to the side the instruction names first."""

    decisions: int = 0
    follows_own: int = 0  # the greedy answer turns to the expert's side with the instruction as given
    follows_mirrored: int = 0  # ... to the other side with "left" and "right" exchanged

    def line(self) -> str:
        n = self.decisions
        if n == 0:
            return "mirror test: no first decision turns to the side the instruction names first"
        return (f"mirror test ({n} first decisions that turn to the side the instruction names first): turns that way "
                f"{self.follows_own} of {n} ({100 * self.follows_own / n:.0f}%); with left and right exchanged in "
                f"the instruction, the other way {self.follows_mirrored} of {n} ({100 * self.follows_mirrored / n:.0f}%)")


_SIDES = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def mirrored(instruction: str) -> str:
    """The instruction with "left" and "right" exchanged (case kept)."""
    def swap(m: re.Match) -> str:
        word = {"left": "right", "right": "left"}[m.group(0).lower()]
        return word.capitalize() if m.group(0)[0].isupper() else word
    return _SIDES.sub(swap, instruction)


HEADER = ("| decisions | n | P(expert answer), own instruction | P, another episode's | own higher | "
          "P(stop) one decision earlier |\n|---|---|---|---|---|---|")


def answer_probabilities(model: Any, frames: Sequence[np.ndarray], instruction: str, answers: Sequence[str]):
    """P(answer | prompt) over `answers`, normalised over them: (len(answers),) float tensor.

    One batched forward: the prompt's embeddings repeated per answer + the ids training
    supervises for it (its tokens and <|eot_id|>, SftCollator.answer_ids), right-padded;
    log P(answer) = the sum of their log-softmax. Frame features come from the model's
    content-keyed cache, so scoring the same frames again does not re-run the tower.
    """
    import torch

    from vila_nav.training.collate import SftCollator

    collator = SftCollator(model.tokenizer, model.image_processor, model.num_frames, model.template)
    ids = [collator.answer_ids(a) for a in answers]
    with torch.inference_mode():
        prompt = model.inputs_embeds(frames, instruction)[0]  # (Lp, H)
        table = model.llm.get_input_embeddings()
        n, lp, longest = len(ids), prompt.shape[0], max(len(x) for x in ids)
        x = prompt.new_zeros((n, lp + longest, prompt.shape[1]))
        mask = torch.zeros((n, lp + longest), dtype=torch.long, device=prompt.device)
        for i, a in enumerate(ids):
            x[i, :lp] = prompt
            x[i, lp:lp + len(a)] = table(torch.tensor(a, device=prompt.device))
            mask[i, :lp + len(a)] = 1
        logp = torch.log_softmax(model.llm(inputs_embeds=x, attention_mask=mask).logits.float(), dim=-1)
        score = torch.stack([sum(logp[i, lp - 1 + k, t] for k, t in enumerate(a)) for i, a in enumerate(ids)])
        return torch.softmax(score, dim=0).cpu()  # (n,)


def run_probe(model: Any, store: Any, decisions: int = 100, seed: int = 0) -> tuple[list[GroupResult], MirrorResult]:
    """The first and stop groups of `store` (at most `decisions` each, in order), scored by
    `model`, and the mirror test on the first decisions."""
    answers = sorted(set(store.answers))
    firsts, stops = [], []
    for rollout in expert_rollouts(store):
        firsts.append(rollout[0])
        if len(rollout) > 1 and _kind(rollout[-1].answer) == STOP_KIND:
            stops.append((rollout[-1], rollout[-2]))
    other = _other_instruction(store, np.random.default_rng(seed))

    def p(frames, instruction: str, answer: str) -> float:
        return float(answer_probabilities(model, frames, instruction, answers)[answers.index(answer)])

    model.reset()  # the model's caches are keyed by content; the weights do not change from here on
    first, stop, mirror = GroupResult("first", [], []), GroupResult("stop", [], []), MirrorResult()
    for s in firsts[:decisions]:
        frames = store.frames(s)
        first.own.append(p(frames, s.instruction, s.answer))
        first.swapped.append(p(frames, other(s), s.answer))
        named = _SIDES.search(s.instruction)
        side = _kind(s.answer)
        if named is None or side != f"turn_{named.group(0).lower()}":
            continue  # mirror test: only first turns to the side the instruction names first
        other_side = "turn_right" if side == "turn_left" else "turn_left"
        mirror.decisions += 1
        mirror.follows_own += _kind(model.generate(frames, s.instruction)) == side
        mirror.follows_mirrored += _kind(model.generate(frames, mirrored(s.instruction))) == other_side
    for s, prev in stops[:decisions]:
        frames = store.frames(s)
        stop.own.append(p(frames, s.instruction, s.answer))
        stop.swapped.append(p(frames, other(s), s.answer))
        stop.before.append(p(store.frames(prev), prev.instruction, s.answer))  # P(stop) one decision earlier
    return [first, stop], mirror


def expert_rollouts(store: Any) -> list[list[Any]]:
    """The store's expert rollouts in file order, each its samples in step order."""
    by_rollout: dict[tuple[int, int, str], list[Any]] = {}
    for s in store.samples:
        if s.source == "expert":
            by_rollout.setdefault((s.dataset, s.shard, s.rollout), []).append(s)
    return [sorted(r, key=lambda s: s.step) for r in by_rollout.values()]


# Decisions before the rollout's end, per row of the stop profile: (first, last), inclusive.
PROFILE_BUCKETS = ((0, 0), (1, 1), (2, 3), (4, 7), (8, 15), (16, None))


@dataclasses.dataclass
class StopProfile:
    """P(stop) along expert rollouts that end in the stop: per decision, how many decisions
    before the end it is (0: the stop itself), P(stop) and whether stop is the likeliest answer."""

    to_end: list[int]
    p_stop: list[float]
    argmax_stop: list[bool]

    def table(self) -> str:
        rows = ["| decisions before the stop | n | mean P(stop) | max P(stop) | stop is the likeliest answer |",
                "|---|---|---|---|---|"]
        to_end, p, top = np.asarray(self.to_end), np.asarray(self.p_stop, float), np.asarray(self.argmax_stop, bool)
        for lo, hi in PROFILE_BUCKETS:
            sel = (to_end >= lo) & (to_end <= (np.inf if hi is None else hi))
            name = f"{lo}" if lo == hi else f"{lo}-{hi}" if hi is not None else f"{lo}+"
            if not sel.any():
                rows.append(f"| {name} | 0 | - | - | - |")
                continue
            rows.append(f"| {name} | {int(sel.sum())} | {p[sel].mean():.3f} | {p[sel].max():.3f} | "
                        f"{int(top[sel].sum())} ({100 * top[sel].mean():.0f}%) |")
        return "\n".join(rows)


def run_stop_profile(model: Any, store: Any, rollouts: int = 25) -> StopProfile:
    """P(stop) (teacher-forced, own instruction) at every decision of the first `rollouts`
    expert rollouts of `store` that end in the stop. A model that knows where the named goal
    is puts its P(stop) peak at 0 decisions before the stop; one that has learnt only "late in
    the episode" rises slowly towards the end and stays below the other answers."""
    ended = [r for r in expert_rollouts(store) if len(r) > 1 and _kind(r[-1].answer) == STOP_KIND]
    if not ended:
        raise ValueError("the stop profile needs expert rollouts that end in the stop; this data has none")
    answers = sorted(set(store.answers))
    stop = answers.index(ended[0][-1].answer)
    model.reset()
    out = StopProfile([], [], [])
    for rollout in ended[:rollouts]:
        for k, s in enumerate(rollout):
            p = answer_probabilities(model, store.frames(s), s.instruction, answers)
            out.to_end.append(len(rollout) - 1 - k)
            out.p_stop.append(float(p[stop]))
            out.argmax_stop.append(int(p.argmax()) == stop)
    return out


def _other_instruction(store: Any, rng: np.random.Generator):
    """other(sample) -> another episode's instruction, uniformly over the distinct instructions of
    `store`'s expert decisions (ValueError when there are fewer than 2: nothing to swap with)."""
    instructions = sorted({s.instruction for s in store.samples if s.source == "expert"})
    if len(instructions) < 2:
        raise ValueError("the probe swaps instructions between episodes: the data needs expert decisions of 2 episodes "
                         "or more, with different instructions")
    def other(s) -> str:
        k = int(rng.integers(len(instructions) - 1))
        return instructions[k + (k >= instructions.index(s.instruction))]
    return other


@dataclasses.dataclass
class MatchHeadResult:
    """The goal-match head's logits, own and swapped instruction, and the own labels (0/1)."""

    own: list[float]
    swapped: list[float]
    labels: list[int]

    def line(self) -> str:
        n, pos = len(self.labels), sum(self.labels)
        if pos in (0, n):
            return f"goal-match head: {n} decisions with {pos} positive labels: no AUC (needs both labels)"
        return (f"goal-match head ({n} decisions naming a recorded object, goal in view and near in {pos}): AUC "
                f"{auc(self.own, self.labels):.3f} with the own instruction, {auc(self.swapped, self.labels):.3f} "
                f"with another episode's (against the own labels; towards 0.5 for a head that reads the goal)")


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve: P(a positive's score > a negative's), ties counting half."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    diff = s[y][:, None] - s[~y][None, :]  # (positives, negatives)
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def load_match_head(step_checkpoint: str, hidden_size: int):
    """The goal-match head (nn.Linear(H, 1)) saved in a step checkpoint's trainer_state/ (strict)."""
    from pathlib import Path

    import torch

    from vila_nav.training.state import STATE_DIR, TrainStateError, load_head

    head = torch.nn.Linear(hidden_size, 1)
    try:
        load_head(head, Path(step_checkpoint) / STATE_DIR, "match_head")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc.filename} not found: pass a step checkpoint (output_dir/checkpoints/step-N) of "
                                f"a run with aux.match_weight > 0") from exc
    except TrainStateError as exc:  # missing / unexpected / wrongly shaped tensors
        raise ValueError(f"not a goal-match head for this model: {exc}") from exc
    return head.eval()


def run_match_probe(model: Any, store: Any, head: Any, range_m: float = 3.0, decisions: int = 300,
                    seed: int = 0) -> MatchHeadResult:
    """The goal-match head on the first `decisions` expert decisions of `store` whose instruction's
    last sentence names an object the data records (see the module docstring)."""
    import torch

    from vila_nav.training.objective import named_goal

    names = sorted({n for s in store.samples if s.visible_objects for n in s.visible_objects})
    if not names:
        raise ValueError("the goal-match probe needs data that records visible_objects (a build-sft of this version "
                         "in the embedded simulator)")
    samples = [s for s in store.samples if s.source == "expert" and s.visible_objects is not None
               and named_goal(s.instruction, names) is not None]
    other = _other_instruction(store, np.random.default_rng(seed))
    decoder = model.llm.get_decoder()

    @torch.inference_mode()
    def logit(frames, instruction: str) -> float:
        state = decoder(inputs_embeds=model.inputs_embeds(frames, instruction)).last_hidden_state[0, -1]  # (H,)
        return float(head(state.float().cpu())[0])  # the state where the answer starts, as in training

    model.reset()
    out = MatchHeadResult([], [], [])
    for s in samples[:decisions]:
        frames = store.frames(s)
        goal = named_goal(s.instruction, names)
        out.own.append(logit(frames, s.instruction))
        out.swapped.append(logit(frames, other(s)))
        out.labels.append(int(goal in s.visible_objects and s.visible_objects[goal] <= range_m))
    return out


def _kind(answer: str) -> str:
    action = parse_action(answer)
    return action.kind if action is not None else ""


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="vila-nav probe-instruction", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="NaVILA-layout checkpoint directory")
    p.add_argument("data", help="SFT dataset directory (vila-nav build-sft), e.g. a val_seen set")
    p.add_argument("--decisions", type=int, default=100, help="decisions per group (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the swapped-instruction draw")
    p.add_argument("--device", default="cpu")
    p.add_argument("--match-head", default="", metavar="STEP_CHECKPOINT",
                   help="also probe the goal-match head saved in this step checkpoint's trainer_state/")
    p.add_argument("--match-range-m", type=float, default=3.0, help="the run's aux.match_range_m (default 3.0)")
    p.add_argument("--match-decisions", type=int, default=300, help="decisions for the goal-match probe (default 300)")
    p.add_argument("--stop-profile", type=int, default=0, metavar="ROLLOUTS",
                   help="also print P(stop) by decisions before the stop over this many expert rollouts (default 0: off)")
    p.add_argument("--routing", type=int, default=0, metavar="DECISIONS",
                   help="also print where the answer position attends and linear probes of the answer's kind "
                        "from the current view and from the LM, over this many decisions drawn by their "
                        "rebalancing weights (default 0: off)")
    args = p.parse_args(argv)
    if args.decisions < 1 or args.match_decisions < 1:
        p.error("--decisions and --match-decisions must be >= 1")
    if args.stop_profile < 0:
        p.error("--stop-profile must be >= 0")
    if args.routing < 0:
        p.error("--routing must be >= 0")
    if not args.match_range_m > 0:
        p.error("--match-range-m must be > 0")

    from vila_nav.model import load
    from vila_nav.training.store import SftDataset

    try:  # SftFormatError and CheckpointError are ValueErrors
        store = SftDataset(args.data)
        model = load(args.model, device=args.device)
        head = load_match_head(args.match_head, model.llm.config.hidden_size) if args.match_head else None
    except (FileNotFoundError, ValueError) as exc:
        print(f"vila-nav probe-instruction: {exc}", file=sys.stderr)
        return 2
    store.num_frames = model.num_frames
    try:
        groups, mirror = run_probe(model, store, args.decisions, args.seed)
        match = None if head is None else run_match_probe(model, store, head, args.match_range_m,
                                                          args.match_decisions, args.seed)
        profile = run_stop_profile(model, store, args.stop_profile) if args.stop_profile else None
        routing = run_routing(model, store, args.routing, args.seed) if args.routing else None
    except ValueError as exc:
        print(f"vila-nav probe-instruction: {exc}", file=sys.stderr)
        return 2
    print(f"model {args.model}, data {args.data} (teacher-forced, {model.num_frames} frames)\n")
    print(HEADER)
    for g in groups:
        print(g.row())
    print(f"\n{mirror.line()}")
    if match is not None:
        print(f"\n{match.line()}")
    if profile is not None:
        print(f"\nP(stop) along {profile.to_end.count(0)} expert rollouts "
              f"(teacher-forced, own instruction):\n\n{profile.table()}")
    if routing is not None:
        print(f"\n{routing.table()}")
    return 0
