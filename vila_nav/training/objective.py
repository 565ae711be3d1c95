"""The SFT forward pass and loss of a VilaModel (an nn.Module, so DDP / accelerate can wrap it).

    pixel_values (U, 3, S, S) --vision tower--> (U, N, C) --projector--> visual (U, T, H)
    per sample: VilaModel.embed(input_ids, [visual[j] for j in frame_index[b]]) -> (L_b, H)
    right-pad to (B, L, H) + attention mask -> LM decoder -> hidden (B, L, H)
        (the P leading tokens every sample shares, the system prompt up to the first image slot, run
        once at batch 1 and their keys/values repeated B times: causal attention makes them identical
        in every row; with NaVILA's prompt P ~ 110 of ~270 tokens, ~40% of the LM's work per batch)
    answer positions only: lm_head(hidden[p]) -> logits (M, V); cross-entropy with the next token

The sequence is the one `VilaModel.generate` builds for a decision (same prompt ids, same slot
replacement), so training and inference see identical layouts. The loss is the mean over the
batch's supervised tokens (answer + <|eot_id|>); logits are computed only where supervised
(M tokens instead of B x L). A sample is an exact match when every supervised token is the
argmax: that is exactly when greedy decoding reproduces the answer.

Auxiliary vision loss (aux_weight > 0, training only): a linear head reads the current frame's
projected visual tokens (T x H, flattened: the layout of the view matters) and predicts the
answer's direction (forward / turn left / turn right / stop); its cross-entropy, times
aux_weight, is added to the loss. A from-scratch tower otherwise gets gradients only through an
LM that has not yet learnt to look at it, and training sits for thousands of steps at the label
prior; the head gives the tower a direct signal from step one. The head is part of this
objective, not of the model: checkpoints keep NaVILA's layout (the trainer saves the head with
the training state for resuming).

Progress loss (progress_weight > 0, training only; a progress monitor as in Ma et al., "Self-Monitoring
Navigation Agent via Auxiliary Progress Estimation", ICLR 2019): a linear head reads the LM's
hidden state at the position that predicts the answer's first token (it has seen every frame and
the whole instruction) and classifies the geodesic distance to the goal into bins (edges in m,
e.g. [1, 2, 3, 5, 8] -> 6 classes; the SFT data records the distance per decision). Every
decision carries this target, while the answer is "move forward" for most of them whatever the
instruction says: the distance to the goal depends on where the named goal is, so the loss
rewards reading the instruction and finding its landmarks in the view, which the answer loss
alone rewards only at the rare turns and stops. Samples without a distance are left out of it.

Object loss (objects_weight > 0, training only): a linear head reads the current frame's
projected visual tokens (like the vision loss) and predicts, for every object name of the
training data ("green box", "stove") and every range r in objects_ranges_m, whether the frame
shows such an object within r metres (the simulator's ground truth, `visible_objects` in the SFT
data; vila_nav.scenes.visibility). Binary cross-entropy, summed over names and ranges, mean over
frames. The answer loss says only which way to go, so a tower trained from it alone has no reason
to tell a stove from a fridge; stopping "next to the stove" needs exactly that. Samples without
the ground truth are left out of it; names outside `object_names` (ones the training data never
shows, e.g. in validation data) are ignored. objects_head="names" scores the same labels with a
head tied to the LM's word embeddings instead of a free linear layer (name_head.py: the visual
tokens learn to resemble the words that name what they show).

Goal-match loss (match_weight > 0, training only): a linear head reads the LM's hidden state
where the answer starts (like the progress head) and predicts whether the object the
instruction's last sentence names (`named_goal`: "Stop next to the stove." -> "stove") is in
the current view within match_range_m (binary cross-entropy, mean over rows). That is the
comparison a stop needs, between the goal the instruction names and what the view shows; the
answer loss asks for it only at the rare stop decisions, this target at every decision. Rows
whose last sentence names no known object, or without the ground truth, are left out.

Swapped goal-match rows (match_swapped, training only): in expert data the goal is near when the
episode is nearly over, whatever it is called, so the frames alone give the goal-match label
away and the head learns that instead of the comparison (`probe-instruction --match-head`).
With match_swapped every goal-match row is scored a second time with the instruction of the
next goal-match row in the batch whose instruction differs (the same frames, another episode's
goal; one more LM pass over the prompt, no answer), labelled for that instruction's goal from the same visible_objects. Its
binary cross-entropy is match_swapped_loss, added with match_weight: only the comparison
predicts both rows.
"""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vila_nav.model.kv_cache import cache_kwargs
from vila_nav.training.collate import AUX_KINDS, IGNORE_INDEX
from vila_nav.training.name_head import NameGroundedHead, name_token_ids
from vila_nav.training.train_config import OBJECT_HEADS, check_edges


class SftObjective(nn.Module):
    """Wraps a VilaModel; forward(batch) -> {"loss", "lm_loss", "aux_loss", "progress_loss",
    "objects_loss", "match_loss", "match_swapped_loss", "objects_rows", "match_rows",
    "match_swapped_rows" (how many rows those losses scored: int), "tokens", "exact" (B,) bool}."""

    def __init__(self, model: nn.Module, share_prefix: bool = True, aux_weight: float = 0.0,
                 progress_weight: float = 0.0, progress_edges_m: Sequence[float] = (1.0, 2.0, 3.0, 5.0, 8.0),
                 objects_weight: float = 0.0, object_names: Sequence[str] = (),
                 objects_ranges_m: Sequence[float] = (2.0, 4.0, 8.0), objects_head: str = "linear",
                 match_weight: float = 0.0, match_range_m: float = 3.0, match_swapped: bool = False):
        super().__init__()
        self.model = model
        self.share_prefix = share_prefix  # False: every row runs its whole sequence (reference path)
        self.aux_weight = float(aux_weight)
        self.aux_head: nn.Linear | None = None
        hidden_size = model.llm.config.hidden_size
        view_size = model.projector.num_tokens(model.vision.num_tokens) * hidden_size  # T x H per frame
        if self.aux_weight > 0:
            self.aux_head = nn.Linear(view_size, len(AUX_KINDS))
        self.progress_weight = float(progress_weight)
        self.progress_head: nn.Linear | None = None
        if self.progress_weight > 0:
            edges = check_edges(progress_edges_m, "progress_edges_m")
            self.register_buffer("progress_edges", torch.tensor(edges), persistent=False)
            self.progress_head = nn.Linear(hidden_size, len(edges) + 1)
        self.objects_weight = float(objects_weight)
        self.objects_head: nn.Module | None = None
        self.object_names = tuple(object_names)
        self.match_weight = float(match_weight)
        self.match_range_m = float(match_range_m)
        self.match_head: nn.Linear | None = None
        if self.match_weight > 0:
            self.match_head = nn.Linear(hidden_size, 1)
        self.match_swapped = bool(match_swapped) and self.match_head is not None
        if (self.objects_weight > 0 or self.match_weight > 0) and (
                not self.object_names or len(set(self.object_names)) != len(self.object_names)):
            raise ValueError(f"the object and goal-match losses need distinct object names, got {list(self.object_names)}")
        if objects_head not in OBJECT_HEADS:
            raise ValueError(f"objects_head must be one of {list(OBJECT_HEADS)}, got {objects_head!r}")
        self.objects_head_kind = objects_head
        if self.objects_weight > 0:
            self.objects_ranges = tuple(check_edges(objects_ranges_m, "objects_ranges_m"))
            if objects_head == "names":  # tied to the LM's word embeddings (name_head.py)
                ids = name_token_ids(model.tokenizer, self.object_names)
                self.objects_head = NameGroundedHead(ids, len(self.objects_ranges))
            else:
                self.objects_head = nn.Linear(view_size, len(self.object_names) * len(self.objects_ranges))

    def heads(self) -> dict[str, nn.Module]:
        """The training-only heads by name (saved with the training state, never in the model)."""
        named = {"aux_head": self.aux_head, "progress_head": self.progress_head, "objects_head": self.objects_head,
                 "match_head": self.match_head}
        return {k: v for k, v in named.items() if v is not None}

    def aux_losses(self) -> tuple[str, ...]:
        """Keys of forward()'s auxiliary losses that this objective computes ("aux_loss", ...)."""
        keys = tuple(name.replace("_head", "_loss") for name in self.heads())
        return keys + (("match_swapped_loss",) if self.match_swapped else ())

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        m = self.model
        device = m.device
        vis_dtype = next(p.dtype for p in m.vision.parameters() if p.is_floating_point())
        pixels = batch["pixel_values"].to(device=device, dtype=vis_dtype)
        features = m.vision(pixels)  # (U, N, C)
        visual = m.projector(features)  # (U, T, H)
        frame_index = batch["frame_index"].tolist()
        embeds, labels = [], []
        for ids, n_answer, slots in zip(batch["input_ids"], batch["answer_len"], frame_index):
            e = m.embed(ids, [visual[j] for j in slots])[0]  # (L_b, H)
            embeds.append(e)
            lab = torch.full((e.shape[0],), IGNORE_INDEX, dtype=torch.long, device=device)
            lab[-n_answer:] = torch.tensor(ids[-n_answer:], dtype=torch.long, device=device)
            labels.append(lab)
        b = len(embeds)
        x, mask = _right_pad(embeds)
        y = torch.full(mask.shape, IGNORE_INDEX, dtype=torch.long, device=device)
        for i, lab in enumerate(labels):
            y[i, : lab.shape[0]] = lab
        hidden = self._decode(x, mask, _shared_prefix(batch["input_ids"]))
        target = y[:, 1:]  # position p predicts token p + 1
        sel = target != IGNORE_INDEX  # (B, L - 1)
        logits = m.llm.get_output_embeddings()(hidden[:, :-1][sel]).float()  # (M, V)
        goal = target[sel]
        lm_loss = F.cross_entropy(logits, goal)
        wrong = (logits.argmax(dim=-1) != goal).float()
        per_sample_wrong = torch.zeros(b, device=device).index_add_(0, sel.nonzero()[:, 0], wrong)
        loss = lm_loss
        aux, progress, objects, match, swapped = (lm_loss.new_zeros(()) for _ in range(5))
        current = visual[[slots[-1] for slots in frame_index]]  # (B, T, H): each sample's current view
        # Row i's answer starts at L_i - answer_len_i; the position before it predicts it.
        at = torch.tensor([e.shape[0] - n - 1 for e, n in zip(embeds, batch["answer_len"])], device=device)
        answer_state = hidden[torch.arange(b, device=device), at]  # (B, H): seen every frame and the instruction
        match_rows: list[int] = []
        swapped_rows: list[int] = []
        if self.match_head is not None:
            match_rows, target = self.match_target(batch["instructions"], batch["visible_objects"])
            if match_rows:
                logit = self.match_head(answer_state[match_rows]).float()[:, 0]  # (B',)
                match = F.binary_cross_entropy_with_logits(logit, target.to(device))
                loss = loss + self.match_weight * match
            if self.match_swapped:
                pairs = _other_rows(match_rows, batch["instructions"])  # (row, row whose instruction it takes)
                texts = [batch["instructions"][j] for _i, j in pairs]
                swapped_rows, target = self.match_target(texts, [batch["visible_objects"][i] for i, _j in pairs])
                if swapped_rows:
                    rows = [pairs[k][0] for k in swapped_rows]
                    state = self._prompt_states([texts[k] for k in swapped_rows], [frame_index[i] for i in rows],
                                                visual)  # (B'', H)
                    logit = self.match_head(state).float()[:, 0]
                    swapped = F.binary_cross_entropy_with_logits(logit, target.to(device))
                    loss = loss + self.match_weight * swapped
        if self.progress_head is not None:
            distance = torch.tensor([math.nan if d is None else float(d) for d in batch["goal_distance"]],
                                    device=device)  # (B,) m; nan = not recorded
            known = torch.isfinite(distance)
            if bool(known.any()):
                h = answer_state[known]  # (B', H)
                bins = torch.bucketize(distance[known], self.progress_edges, right=True)  # (B',) class per row
                progress = F.cross_entropy(self.progress_head(h).float(), bins)
                loss = loss + self.progress_weight * progress
        if self.aux_head is not None:
            kinds = torch.tensor(batch["answer_kind"], dtype=torch.long, device=device)
            if bool((kinds != IGNORE_INDEX).any()):
                aux = F.cross_entropy(self.aux_head(current.flatten(1)).float(), kinds, ignore_index=IGNORE_INDEX)
                loss = loss + self.aux_weight * aux
        objects_rows: list[int] = []
        if self.objects_head is not None:
            objects_rows = [i for i, seen in enumerate(batch["visible_objects"]) if seen is not None]
            if objects_rows:
                target = self.objects_target([batch["visible_objects"][i] for i in objects_rows]).to(device)  # (B', N, R)
                view = current[objects_rows]  # (B', T, H)
                if self.objects_head_kind == "names":
                    logits = self.objects_head(view, m.llm.get_input_embeddings())
                else:
                    logits = self.objects_head(view.flatten(1)).float().view(target.shape)
                per_label = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
                objects = per_label.sum(dim=(1, 2)).mean()
                loss = loss + self.objects_weight * objects
        return {"loss": loss, "lm_loss": lm_loss.detach(), "aux_loss": aux.detach(),
                "progress_loss": progress.detach(), "objects_loss": objects.detach(), "match_loss": match.detach(),
                "match_swapped_loss": swapped.detach(), "objects_rows": len(objects_rows),
                "match_rows": len(match_rows), "match_swapped_rows": len(swapped_rows), "tokens": sel.sum(),
                "exact": per_sample_wrong == 0}

    def _prompt_states(self, instructions: Sequence[str], frame_slots: Sequence[Sequence[int]],
                       visual: torch.Tensor) -> torch.Tensor:
        """(B, H): the LM's state at the last prompt token (where the answer starts) of each
        instruction's decision prompt, with the frames at frame_slots (indices into visual)."""
        m = self.model
        ids = [m.prompt_ids(text) for text in instructions]
        embeds = [m.embed(row, [visual[j] for j in slots])[0] for row, slots in zip(ids, frame_slots)]  # (L_b, H)
        x, mask = _right_pad(embeds)
        hidden = self._decode(x, mask, _shared_prefix(ids))
        last = torch.tensor([e.shape[0] - 1 for e in embeds], device=x.device)
        return hidden[torch.arange(len(embeds), device=x.device), last]

    def match_target(self, instructions: Sequence[str], seen: Sequence[dict[str, float] | None]
                     ) -> tuple[list[int], torch.Tensor]:
        """Rows with a goal-match label and their labels (B',) float 0/1: the object the row's
        instruction names last is in view within match_range_m."""
        rows, labels = [], []
        for i, (text, objects) in enumerate(zip(instructions, seen)):
            goal = named_goal(text, self.object_names)
            if goal is None or objects is None:
                continue
            rows.append(i)
            labels.append(float(goal in objects and objects[goal] <= self.match_range_m))
        return rows, torch.tensor(labels)

    def objects_target(self, seen: Sequence[dict[str, float]]) -> torch.Tensor:
        """(F, N, R) float 0/1: frame f shows an object named object_names[n] within objects_ranges[r] m."""
        index = {name: n for n, name in enumerate(self.object_names)}
        ranges = torch.tensor(self.objects_ranges)
        target = torch.zeros(len(seen), len(self.object_names), len(ranges))
        for f, objects in enumerate(seen):
            for name, distance in objects.items():
                if name in index:
                    target[f, index[name]] = (float(distance) <= ranges).float()
        return target

    def _decode(self, x: torch.Tensor, mask: torch.Tensor, shared: int) -> torch.Tensor:
        """LM decoder over right-padded embeddings x (B, L, H) -> hidden states (B, L, H)."""
        llm = self.model.llm
        decoder = llm.get_decoder()
        b = x.shape[0]
        # Activation checkpointing re-runs layers, which would append the cached keys twice.
        checkpointing = any(getattr(mod, "gradient_checkpointing", False) for mod in llm.modules())
        if not self.share_prefix or b < 2 or shared < 1 or checkpointing:
            return decoder(inputs_embeds=x, attention_mask=mask, use_cache=False).last_hidden_state
        from transformers import DynamicCache

        cache = DynamicCache()
        head = decoder(inputs_embeds=x[:1, :shared], **cache_kwargs(decoder, cache), use_cache=True).last_hidden_state
        cache.batch_repeat_interleave(b)  # (1, heads, P, d) -> (B, heads, P, d); gradients sum back
        tail = decoder(inputs_embeds=x[:, shared:], attention_mask=mask, **cache_kwargs(decoder, cache),
                       use_cache=True).last_hidden_state  # (B, L - P, H)
        return torch.cat([head.expand(b, -1, -1), tail], dim=1)


def named_goal(instruction: str, names: Sequence[str]) -> str | None:
    """The object name (one of `names`, the longest if several) that the instruction's last
    sentence mentions as a whole phrase, e.g. "... Stop next to the green box." -> "green box";
    None when it names none."""
    sentences = [t for t in re.split(r"[.!?]+", instruction.lower()) if t.strip()]
    if not sentences:
        return None
    last = " " + re.sub(r"[^a-z0-9 ]+", " ", sentences[-1]) + " "
    found = [n for n in names if f" {n.lower()} " in last]
    return max(found, key=len) if found else None


def _other_rows(rows: Sequence[int], instructions: Sequence[str]) -> list[tuple[int, int]]:
    """(i, j) for each row i: j is the next of `rows` after i (cyclic) whose instruction differs
    from i's; rows with no such j are left out (e.g. a batch that holds one episode)."""
    out = []
    for k, i in enumerate(rows):
        for j in list(rows[k + 1:]) + list(rows[:k]):
            if instructions[j] != instructions[i]:
                out.append((i, j))
                break
    return out


def _right_pad(embeds: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences (L_b, H) -> right-padded (B, L, H) and attention mask (B, L) (1 = real token).
    Right padding keeps every real token at the position it has at inference."""
    longest = max(e.shape[0] for e in embeds)
    x = embeds[0].new_zeros((len(embeds), longest, embeds[0].shape[1]))
    mask = torch.zeros((len(embeds), longest), dtype=torch.long, device=x.device)
    for i, e in enumerate(embeds):
        x[i, : e.shape[0]] = e
        mask[i, : e.shape[0]] = 1
    return x, mask


def _shared_prefix(input_ids: list[list[int]]) -> int:
    """Length of the text prefix all rows share, up to the first image slot (negative id)."""
    first = input_ids[0]
    n = 0
    for n, tok in enumerate(first):
        if tok < 0 or any(len(ids) <= n or ids[n] != tok for ids in input_ids[1:]):
            return n
    return max(len(first) - 1, 0)  # never the whole row: the answer positions follow the prefix
