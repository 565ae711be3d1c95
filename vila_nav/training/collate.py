"""Batches for SFT: decision samples -> pixels of the unique frames + token ids with image slots.

One sample is laid out exactly as `VilaModel.generate` sees a decision, followed by the answer:

    prompt ids (vila_nav.model.prompt: NaVILA's question in the llama_3 template, split on
    "<image>", one IMAGE_TOKEN_INDEX slot per frame)  +  answer ids + <|eot_id|>

and each slot is later replaced by that frame's T projected visual tokens (objective.py). Only
the answer tokens and the closing <|eot_id|> are supervised: the prompt and the image slots get
label -100. The answer is tokenised on its own (no BOS) and appended to the prompt's ids: that
is the sequence greedy decoding continues from. (Tokenising prompt + answer as one string can
split differently at the seam: the byte-level BPE cuts "\\n\\nThe" into "\\n", "\\n", "The"
while the prompt alone ends in the single token "\\n\\n".)

Frames shared by samples of a batch (above all the black padding frame) are preprocessed and
encoded once: the batch carries the unique frames and, per sample, indices into them.
"""
from __future__ import annotations

from typing import Any, Hashable, Sequence

import numpy as np
import torch

from vila_nav.model.prompt import LLAMA_3, ChatTemplate, decision_prompt_ids, stop_token_ids
from vila_nav.training.store import SftDataset

IGNORE_INDEX = -100  # label of unsupervised positions (torch cross-entropy's ignore_index)
AUX_KINDS = ("forward", "turn_left", "turn_right", "stop")  # classes of the auxiliary vision loss


class DecisionDataset(torch.utils.data.Dataset):
    """torch view of an SftDataset: item i -> {"frames", "frame_keys", "instruction", "answer", "id",
    "goal_distance_m", "visible_objects" (None when the dataset does not record them; blind items
    have no visible objects)}.

    frame_keys identify a frame across samples ((dataset, shard, rollout, index); None = black)
    so a batch encodes each distinct frame once.
    """

    def __init__(self, store: SftDataset, blind: bool = False):
        self.store = store
        self.blind = bool(blind)  # every frame black (a language-only baseline); nothing is read from disk

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.store[int(i)]
        if self.blind:
            black = np.zeros(tuple(self.store.manifests[s.dataset]["frame_shape"]), dtype=np.uint8)
            return {"frames": [black] * self.store.num_frames, "frame_keys": [None] * self.store.num_frames,
                    "instruction": s.instruction, "answer": s.answer, "id": s.id, "goal_distance_m": s.goal_distance_m,
                    "visible_objects": None}
        indices = self.store.frame_indices(s)
        keys = [None if k is None else (s.dataset, s.shard, s.rollout, k) for k in indices]
        return {"frames": self.store.frames(s), "frame_keys": keys, "instruction": s.instruction,
                "answer": s.answer, "id": s.id, "goal_distance_m": s.goal_distance_m,
                "visible_objects": s.visible_objects}


class SftCollator:
    """List of DecisionDataset items -> a batch dict (CPU tensors and lists):

    pixel_values (U, 3, S, S) float32   the U distinct frames of the batch, preprocessed
    frame_index  (B, K) int64           per sample, its K frames as indices into pixel_values
    input_ids    list of B lists         prompt ids (IMAGE_TOKEN_INDEX at slots) + answer ids
    answer_len   list of B ints          how many trailing ids are supervised
    answer_kind  list of B ints          the answer's direction (index in AUX_KINDS; -100 if it
                                         does not parse), for the auxiliary vision loss
    goal_distance list of B float|None   geodesic distance to the goal (m), for the progress loss
    visible_objects list of B dict|None  {object name: distance (m)} in the current view, for the
                                         object loss
    answers, instructions, ids list of B str
    """

    def __init__(self, tokenizer, image_processor, num_frames: int, template: ChatTemplate = LLAMA_3):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.num_frames = int(num_frames)
        self.template = template
        self.eot_id = stop_token_ids(template, tokenizer)[0]  # the template's turn separator <|eot_id|>
        self._prompt_cache: dict[str, list[int]] = {}
        self._answer_cache: dict[str, list[int]] = {}
        self._kind_cache: dict[str, int] = {}

    def prompt_ids(self, instruction: str) -> list[int]:
        """The decision prompt's ids (same code path as VilaModel.prompt_ids)."""
        ids = self._prompt_cache.get(instruction)
        if ids is None:
            ids = decision_prompt_ids(instruction, self.num_frames, self.template, self.tokenizer)
            if len(self._prompt_cache) < 100_000:
                self._prompt_cache[instruction] = ids
        return list(ids)

    def answer_ids(self, answer: str) -> list[int]:
        """Supervised ids of an answer: its tokens (no BOS) + <|eot_id|>."""
        ids = self._answer_cache.get(answer)
        if ids is None:
            ids = list(self.tokenizer(answer, add_special_tokens=False).input_ids) + [self.eot_id]
            self._answer_cache[answer] = ids
        return list(ids)

    def answer_kind(self, answer: str) -> int:
        """Index of the answer's action kind in AUX_KINDS (IGNORE_INDEX when it does not parse)."""
        kind = self._kind_cache.get(answer)
        if kind is None:
            from vila_nav.actions import parse_action

            action = parse_action(answer)
            kind = IGNORE_INDEX if action is None else AUX_KINDS.index(action.kind)
            self._kind_cache[answer] = kind
        return kind

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        unique: dict[Hashable, int] = {}
        pixels: list[np.ndarray] = []
        frame_index = torch.empty((len(items), self.num_frames), dtype=torch.long)
        input_ids, answer_len = [], []
        for b, item in enumerate(items):
            if len(item["frames"]) != self.num_frames:
                raise ValueError(f"sample {item['id']}: {len(item['frames'])} frames, the model takes {self.num_frames}")
            for k, (frame, key) in enumerate(zip(item["frames"], item["frame_keys"])):
                key = ("black", frame.shape) if key is None else key
                if key not in unique:
                    unique[key] = len(pixels)
                    pixels.append(self.image_processor(frame))  # (3, S, S) float32
                frame_index[b, k] = unique[key]
            answer = self.answer_ids(item["answer"])
            input_ids.append(self.prompt_ids(item["instruction"]) + answer)
            answer_len.append(len(answer))
        return {
            "pixel_values": torch.from_numpy(np.stack(pixels)),
            "frame_index": frame_index,
            "input_ids": input_ids,
            "answer_len": answer_len,
            "answer_kind": [self.answer_kind(item["answer"]) for item in items],
            "goal_distance": [item.get("goal_distance_m") for item in items],
            "visible_objects": [item.get("visible_objects") for item in items],
            "answers": [item["answer"] for item in items],
            "instructions": [item["instruction"] for item in items],
            "ids": [item["id"] for item in items],
        }
