"""Prompt: NaVILA's exact string, image slots, BOS handling, stop tokens, the offline tokenizer."""
from __future__ import annotations

import pytest

from vila_nav.model.prompt import (
    IMAGE_TOKEN_INDEX,
    LLAMA_3,
    ChatTemplate,
    build_prompt,
    get_template,
    navigation_question,
    register_template,
    stop_token_ids,
    tokenize_with_image_slots,
)
from vila_nav.model.tokenizer import SPECIAL_TOKENS, build_tokenizer

# The full prompt for K = 8, written out by hand from NaVILA's release.
EXPECTED_8 = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    "You are a helpful language and vision assistant. You are able to understand the visual content "
    "that the user provides, and assist the user with a variety of tasks using natural language."
    "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
    "Imagine you are a robot programmed for navigation tasks. You have been given a video of "
    "historical observations <image>\n<image>\n<image>\n<image>\n<image>\n<image>\n<image>\n, and "
    "current observation <image>\n. Your assigned task is: \"Walk to the sofa and stop.\" Analyze "
    "this series of images to decide your next action, which could be turning left or right by a "
    "specific degree, moving forward a certain distance, or stop if the task is completed."
    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_prompt_string_byte_for_byte():
    assert build_prompt("Walk to the sofa and stop.", 8) == EXPECTED_8
    assert build_prompt("x", 8, LLAMA_3).encode() == EXPECTED_8.replace("Walk to the sofa and stop.", "x").encode()


def test_question_placeholders():
    q = navigation_question("go", 3)
    assert q.count("<image>") == 3
    assert "observations <image>\n<image>\n, and current observation <image>\n. Your" in q
    with pytest.raises(ValueError):
        navigation_question("go", 0)


def test_token_layout_slots_and_bos(tok):
    ids = tokenize_with_image_slots(EXPECTED_8, tok)
    bos = tok.bos_token_id
    # Two BOS: the tokenizer's own plus the literal <|begin_of_text|> of the system string.
    assert ids[:2] == [bos, bos]
    assert ids.count(bos) == 2
    assert ids.count(IMAGE_TOKEN_INDEX) == 8
    # Each chunk is tokenised separately, later chunks without their BOS.
    chunks = EXPECTED_8.split("<image>")
    want = list(tok(chunks[0]).input_ids)
    for chunk in chunks[1:]:
        c = list(tok(chunk).input_ids)
        assert c[0] == bos
        want += [IMAGE_TOKEN_INDEX] + c[1:]
    assert ids == want
    # Between consecutive history slots there is exactly the "\n" chunk.
    slots = [k for k, t in enumerate(ids) if t == IMAGE_TOKEN_INDEX]
    newline = tok("\n", add_special_tokens=False).input_ids
    for a, b in zip(slots[:6], slots[1:7]):
        assert ids[a + 1 : b] == newline
    # The text decodes back to the prompt minus the placeholders (plus the added BOS).
    text = tok.decode([t for t in ids if t != IMAGE_TOKEN_INDEX])
    assert text == "<|begin_of_text|>" + EXPECTED_8.replace("<image>", "")


def test_stop_tokens_and_specials(tok):
    eot, eos = stop_token_ids(LLAMA_3, tok)
    assert tok.convert_ids_to_tokens([eot, eos]) == ["<|eot_id|>", "<|end_of_text|>"]
    for s in SPECIAL_TOKENS:  # each special is one token, matched inside text
        assert tok(s, add_special_tokens=False).input_ids == [tok.convert_tokens_to_ids(s)]
    bad = ChatTemplate("bad", "", "", "", "", ("<|not_a_token|>",))
    with pytest.raises(ValueError, match="not in the tokenizer"):
        stop_token_ids(bad, tok)


def test_template_registry():
    assert get_template("llama_3") is LLAMA_3
    tpl = ChatTemplate("plain", "SYS", "U:", "A:", "\n", ("<|eot_id|>",))
    register_template(tpl)
    assert get_template("plain").render("q") == "SYS\nU:q\nA:"
    with pytest.raises(ValueError, match="unknown chat template"):
        get_template("nope")
    with pytest.raises(ValueError):
        ChatTemplate("x", "", "", "", "", ())


def test_tokenizer_reloads_through_autotokenizer(tok, tmp_path):
    from transformers import AutoTokenizer

    tok.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert tokenize_with_image_slots(EXPECTED_8, again) == tokenize_with_image_slots(EXPECTED_8, tok)
    assert again.bos_token == "<|begin_of_text|>" and again.eos_token == "<|end_of_text|>"


def test_tokenizer_custom_corpus_and_limits():
    t = build_tokenizer(["move forward move forward turn left"] * 3, vocab_size=300)
    assert len(t) <= 300
    assert t.decode(t("move forward").input_ids, skip_special_tokens=True) == "move forward"
    with pytest.raises(ValueError):
        build_tokenizer(vocab_size=10)
    with pytest.raises(ValueError):
        build_tokenizer([])


@pytest.mark.parametrize("k", [1, 4, 8])
def test_phrase_tokens_shorten_the_prompt_and_keep_its_bytes(k, tmp_path):
    from transformers import AutoTokenizer

    from vila_nav.actions import CANONICAL_OUTPUTS
    from vila_nav.model.prompt import decision_prompt_ids
    from vila_nav.model.tokenizer import prompt_phrases

    phrases = prompt_phrases(k, answers=CANONICAL_OUTPUTS)
    assert any(p.startswith('" Analyze this series') and p.endswith("is completed.") for p in phrases)
    assert not any(s in p for p in phrases for s in (*SPECIAL_TOKENS, "Walk to the sofa"))
    plain, short = build_tokenizer(), build_tokenizer(phrases=phrases)
    instruction = "Walk to the sofa and stop."
    ids, ids_short = (decision_prompt_ids(instruction, k, LLAMA_3, t) for t in (plain, short))
    assert len(ids_short) < len(ids) - 60 and ids_short.count(IMAGE_TOKEN_INDEX) == k
    # same text: the chunks between image slots decode to the prompt's own chunks, byte for byte
    text = "<image>".join(short.decode([i for i in chunk], skip_special_tokens=False)
                          for chunk in _split_slots(ids_short))
    assert text == "<|begin_of_text|>" + build_prompt(instruction, k)
    for answer in CANONICAL_OUTPUTS:  # one token each, decoded verbatim
        (tid,) = short(answer, add_special_tokens=False).input_ids
        assert short.decode([tid]) == answer
    short.save_pretrained(str(tmp_path))  # saved in llm/: AutoTokenizer restores the phrases
    again = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert decision_prompt_ids(instruction, k, LLAMA_3, again) == ids_short
    with pytest.raises(ValueError, match="special tokens"):
        build_tokenizer(phrases=["a <|eot_id|> b"])


def _split_slots(ids):
    chunk = []
    for i in ids:
        if i == IMAGE_TOKEN_INDEX:
            yield chunk
            chunk = []
        else:
            chunk.append(i)
    yield chunk
