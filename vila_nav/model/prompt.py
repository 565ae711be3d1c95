"""NaVILA's prompt: chat templates (data), the navigation question, tokenisation with image slots.

Byte-for-byte what the released checkpoint was trained on, quirks included: each placeholder is
followed by a newline, so the text reads "...observations <image>\n<image>\n, and current
observation <image>\n. Your ..."; the system string itself starts with `<|begin_of_text|>`, so
the token sequence starts with two BOS; and `<image>` is split out of the text (never tokenised)
and replaced by one slot per frame.
"""
from __future__ import annotations

import dataclasses

# Placeholder id of an image slot in a token list (VILA's IMAGE_TOKEN_INDEX); never a vocab id.
IMAGE_TOKEN_INDEX = -200
IMAGE_PLACEHOLDER = "<image>"


@dataclasses.dataclass(frozen=True)
class ChatTemplate:
    """A single-turn chat template: system + sep + user + question + sep + assistant.

    stop_tokens are token *strings*, looked up in the tokenizer at load time (Llama-3: 128009,
    128001).
    """

    name: str
    system: str
    user: str
    assistant: str
    sep: str
    stop_tokens: tuple[str, ...]

    def __post_init__(self):
        if not self.name:
            raise ValueError("ChatTemplate.name must not be empty")
        if not self.stop_tokens:
            raise ValueError(f"ChatTemplate '{self.name}' needs at least one stop token")

    def render(self, question: str) -> str:
        """The full prompt for one user turn, ending where the assistant's answer starts."""
        return self.system + self.sep + self.user + question + self.sep + self.assistant


LLAMA_3 = ChatTemplate(
    name="llama_3",
    system=(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "You are a helpful language and vision assistant. You are able to understand the visual "
        "content that the user provides, and assist the user with a variety of tasks using natural "
        "language."
    ),
    user="<|start_header_id|>user<|end_header_id|>\n\n",
    assistant="<|start_header_id|>assistant<|end_header_id|>\n\n",
    sep="<|eot_id|>",
    stop_tokens=("<|eot_id|>", "<|end_of_text|>"),
)

TEMPLATES: dict[str, ChatTemplate] = {LLAMA_3.name: LLAMA_3}


def register_template(template: ChatTemplate) -> None:
    """Add (or replace) a named chat template."""
    TEMPLATES[template.name] = template


def get_template(name: str) -> ChatTemplate:
    """The registered template `name` (clear error listing the known ones)."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown chat template '{name}'; known: {sorted(TEMPLATES)}") from None


def navigation_question(instruction: str, num_frames: int) -> str:
    """NaVILA's question with num_frames `<image>` placeholders (num_frames - 1 history + current)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    interleaved = "<image>\n" * (num_frames - 1)
    return (
        "Imagine you are a robot programmed for navigation tasks. You have been given a video "
        f"of historical observations {interleaved}, and current observation <image>\n. "
        f'Your assigned task is: "{instruction}" '
        "Analyze this series of images to decide your next action, which could be turning left "
        "or right by a specific degree, moving forward a certain distance, or stop if the task "
        "is completed."
    )


def build_prompt(instruction: str, num_frames: int, template: ChatTemplate = LLAMA_3) -> str:
    """The full prompt string for one decision."""
    return template.render(navigation_question(instruction, num_frames))


def tokenize_with_image_slots(prompt: str, tokenizer) -> list[int]:
    """Token ids of `prompt` with IMAGE_TOKEN_INDEX at every `<image>` (NaVILA's scheme).

    The prompt is split on the literal "<image>"; each chunk is tokenised on its own (with the
    tokenizer's special tokens, so Llama-3 prepends BOS to each); the first chunk keeps its BOS,
    later chunks drop a leading BOS; one slot is inserted between chunks. VILA drops the first
    token of later chunks unconditionally; we drop it only when it is BOS, which is the same for
    every tokenizer that prepends BOS (Llama-3 does) and loses no text for one that does not.
    """
    bos = tokenizer.bos_token_id
    ids: list[int] = []
    for k, chunk in enumerate(prompt.split(IMAGE_PLACEHOLDER)):
        chunk_ids = list(tokenizer(chunk).input_ids)
        if k > 0:
            ids.append(IMAGE_TOKEN_INDEX)
            if bos is not None and chunk_ids and chunk_ids[0] == bos:
                chunk_ids = chunk_ids[1:]
        ids.extend(chunk_ids)
    return ids


def decision_prompt_ids(instruction: str, num_frames: int, template: ChatTemplate, tokenizer) -> list[int]:
    """Token ids of one decision's prompt, with exactly `num_frames` image slots.

    The one path from instruction to prompt ids, for inference (VilaModel) and training (the
    SFT collator). A literal `<image>` in the instruction would become an extra image slot, so
    it is an error, not text.
    """
    if IMAGE_PLACEHOLDER in instruction:
        raise ValueError(f"the instruction {instruction[:60]!r} contains the literal '<image>', "
                         "which the prompt reserves for frames")
    ids = tokenize_with_image_slots(build_prompt(instruction, num_frames, template), tokenizer)
    slots = sum(1 for t in ids if t == IMAGE_TOKEN_INDEX)
    if slots != num_frames:
        raise ValueError(f"chat template '{template.name}' gives {slots} image slots for {num_frames} frames")
    return ids


def stop_token_ids(template: ChatTemplate, tokenizer) -> tuple[int, ...]:
    """Ids of the template's stop tokens in `tokenizer` (error if one is not a single token)."""
    ids = []
    unk = getattr(tokenizer, "unk_token_id", None)
    for tok in template.stop_tokens:
        tid = tokenizer.convert_tokens_to_ids(tok)
        if tid is None or (unk is not None and tid == unk) or isinstance(tid, list):
            raise ValueError(f"stop token {tok!r} of template '{template.name}' is not in the tokenizer's vocabulary")
        ids.append(int(tid))
    return tuple(ids)
