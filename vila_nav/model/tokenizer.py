"""An offline byte-level BPE tokenizer with Llama-3's special tokens, for small VILA models.

The released NaVILA checkpoint ships Llama-3's own tokenizer in `llm/` and is loaded with
AutoTokenizer; this builder is for the models this project trains and for test checkpoints. It
trains a byte-level BPE (every byte sequence encodes, no unknown token) with the `tokenizers`
library on a corpus you pass (e.g. the training instructions and answers) or on a small built-in
navigation corpus, adds the Llama-3 chat special tokens plus `<image>`, and prepends
`<|begin_of_text|>` to every encoding, as the Llama-3 tokenizer does. Nothing is downloaded.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterable, Sequence

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
IMAGE = "<image>"
# Order = token ids 0..5 of a built tokenizer.
SPECIAL_TOKENS: tuple[str, ...] = (BOS, EOS, START_HEADER, END_HEADER, EOT, IMAGE)

_ANSWERS = (
    "The next action is move forward 25 cm.",
    "The next action is move forward 50 cm.",
    "The next action is move forward 75 cm.",
    "The next action is turn left 15 degree.",
    "The next action is turn left 30 degree.",
    "The next action is turn left 45 degree.",
    "The next action is turn right 15 degree.",
    "The next action is turn right 30 degree.",
    "The next action is turn right 45 degree.",
    "I think I should stop because I have finished the instruction.",
)
_INSTRUCTIONS = (
    "Walk past the kitchen table and stop at the door on the left.",
    "Go down the hallway, turn right at the stairs and wait by the couch.",
    "Exit the bedroom, walk through the living room and stop next to the plant.",
    "Turn around and go into the bathroom. Stop in front of the sink.",
    "Move forward until the chair, then turn left and stop near the window.",
)


def default_corpus() -> list[str]:
    """The built-in corpus: the NaVILA prompt text, the ten answers and a few instructions."""
    from vila_nav.model.prompt import LLAMA_3, navigation_question

    texts = [LLAMA_3.system, LLAMA_3.user, LLAMA_3.assistant]
    texts += [navigation_question(ins, 8) for ins in _INSTRUCTIONS]
    texts += list(_ANSWERS) * 4 + list(_INSTRUCTIONS)
    return texts


@functools.lru_cache(maxsize=8)
def _train_json(corpus: tuple[str, ...], vocab_size: int, min_frequency: int) -> str:
    # Cached as JSON so repeated builds (tests make many tiny checkpoints) cost ~1 ms.
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    # Like Llama-3: every encoding starts with <|begin_of_text|>.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return tok.to_str()


def prompt_phrases(num_frames: int, template=None, answers: Sequence[str] = ()) -> list[str]:
    """The fixed text pieces of the decision prompt (and `answers`), for `build_tokenizer(phrases=)`.

    The prompt is rendered around a sentinel instruction and cut at the template's special
    tokens, the `<image>` placeholders and the instruction; every piece longer than 2 characters
    is a phrase ("\n\nYou are a helpful ... language.", "\" Analyze this series ... completed.",
    ...). Derived from vila_nav.model.prompt, so the phrases always match the prompt byte for byte.
    """
    import re

    from vila_nav.model.prompt import IMAGE_PLACEHOLDER, LLAMA_3, build_prompt

    template = LLAMA_3 if template is None else template
    sentinel = "\x00instruction\x00"
    cut = "|".join(re.escape(t) for t in (*SPECIAL_TOKENS, IMAGE_PLACEHOLDER, sentinel))
    pieces = re.split(cut, build_prompt(sentinel, num_frames, template))
    found = [p for p in pieces if len(p) > 2] + [a for a in answers if a]
    return list(dict.fromkeys(found))  # unique, in prompt order


def build_tokenizer(corpus: Iterable[str] | None = None, vocab_size: int = 2048, min_frequency: int = 2,
                    phrases: Sequence[str] = ()):
    """Train a byte-level BPE tokenizer offline; returns a transformers PreTrainedTokenizerFast.

    corpus: texts to learn merges from (default: `default_corpus()`); vocab_size: upper bound on
    the vocabulary (fewer tokens when the corpus has fewer frequent pairs). Special tokens get ids
    0..5 in the order of SPECIAL_TOKENS. Save it with `.save_pretrained(llm_dir)`.
    phrases: literal strings that become one (non-special) token each wherever they occur, after
    the BPE vocabulary (`prompt_phrases`: NaVILA's fixed prompt text and its ten answers). The
    text stays byte for byte the same; only the sequence gets shorter: ~100 fewer tokens per
    decision for the small model, an answer is one token + <|eot_id|>, and decoded text is
    unchanged.
    """
    from tokenizers import AddedToken, Tokenizer
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be >= {256 + len(SPECIAL_TOKENS)} (bytes + specials), got {vocab_size}")
    texts = tuple(default_corpus() if corpus is None else corpus)
    if not texts:
        raise ValueError("corpus is empty")
    tok = Tokenizer.from_str(_train_json(texts, int(vocab_size), int(min_frequency)))
    if phrases:
        clash = [p for p in phrases if any(t in p for t in (*SPECIAL_TOKENS, "<image>"))]
        if clash:
            raise ValueError(f"phrases must not contain special tokens or '<image>': {clash[:3]}")
        tok.add_tokens([AddedToken(p, normalized=False, special=False) for p in dict.fromkeys(phrases)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        additional_special_tokens=[START_HEADER, END_HEADER, EOT, IMAGE],
        clean_up_tokenization_spaces=False,
    )


def save_tokenizer(tokenizer, folder: str | Path) -> Path:
    """Write `tokenizer` into `folder` with save_pretrained (tokenizer.json + config)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    return folder
