"""Tests for the action language (vila_nav.actions): parser, primitives, labels, sentences."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vila_nav.actions import (
    CANONICAL_OUTPUTS,
    MAX_PRIMITIVES,
    PRIMITIVE_IDS,
    PRIMITIVES,
    STOP_SENTENCE,
    NavAction,
    ParserConfig,
    format_action,
    merge_primitives,
    parse_action,
    resolve_unparseable,
    to_primitives,
)

FWD, LEFT, RIGHT, STOP = "forward", "turn_left", "turn_right", "stop"
FUZZ = settings(max_examples=150, deadline=None)


# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------


def test_vocabulary_constants():
    assert PRIMITIVE_IDS == {"STOP": 0, "MOVE_FORWARD": 1, "TURN_LEFT": 2, "TURN_RIGHT": 3}
    assert PRIMITIVES == ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")
    assert [PRIMITIVE_IDS[p] for p in PRIMITIVES] == [0, 1, 2, 3]
    assert STOP_SENTENCE == "I think I should stop because I have finished the instruction."
    assert len(CANONICAL_OUTPUTS) == len(set(CANONICAL_OUTPUTS)) == 10
    assert "The next action is move forward 75 cm." in CANONICAL_OUTPUTS
    assert "The next action is turn right 15 degree." in CANONICAL_OUTPUTS
    assert STOP_SENTENCE in CANONICAL_OUTPUTS


# ---------------------------------------------------------------------------------------------
# NavAction and ParserConfig validation
# ---------------------------------------------------------------------------------------------


def test_nav_action_valid_and_coerced():
    assert NavAction("stop") == NavAction("stop", 0.0)
    a = NavAction("forward", 1)
    assert isinstance(a.amount, float) and a.amount == 1.0
    with pytest.raises(Exception):
        a.amount = 2.0  # frozen


@pytest.mark.parametrize(
    "kind, amount, error",
    [
        ("backward", 1.0, ValueError),
        ("FORWARD", 1.0, ValueError),
        ("forward", -0.25, ValueError),
        ("forward", math.nan, ValueError),
        ("turn_left", math.inf, ValueError),
        ("stop", 1.0, ValueError),
        ("forward", True, TypeError),
        ("forward", "1", TypeError),
    ],
)
def test_nav_action_rejects(kind, amount, error):
    with pytest.raises(error):
        NavAction(kind, amount)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"max_input_chars": 0}, "max_input_chars"),
        ({"max_input_chars": 1.5}, "max_input_chars"),
        ({"max_forward_m": 0.0}, "limits"),
        ({"max_forward_m": math.inf}, "max_forward_m"),
        ({"max_turn_deg": -1.0}, "max_turn_deg"),
        ({"over_limit": "ignore"}, "over_limit"),
        ({"on_unparseable": "forward"}, "on_unparseable"),
        ({"max_requeries": -1}, "max_requeries"),
        ({"default_forward_m": 5.0}, "default_forward_m"),
        ({"default_turn_deg": math.nan}, "default_turn_deg"),
        ({"default_turn_deg": 200.0}, "default_turn_deg"),
    ],
)
def test_parser_config_validation(overrides, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ParserConfig(**overrides)


def test_parser_config_composes_with_hydra(tmp_path):
    from vila_nav.config import ConfigError, compose

    cfg = compose(ParserConfig, "parser", ["over_limit=clamp", "max_forward_m=2", "on_unparseable=requery"],
                  config_dir=tmp_path)
    assert isinstance(cfg, ParserConfig)
    assert (cfg.over_limit, cfg.max_forward_m, cfg.on_unparseable) == ("clamp", 2.0, "requery")
    with pytest.raises(ConfigError, match="over_limit"):
        compose(ParserConfig, "parser", ["over_limit=maybe"], config_dir=tmp_path)


def test_resolve_unparseable():
    assert [resolve_unparseable(ParserConfig(), n) for n in range(4)] == ["stop"] * 4
    assert [resolve_unparseable(None, n) for n in range(2)] == ["stop"] * 2
    cfg = ParserConfig(on_unparseable="requery", max_requeries=2)
    assert [resolve_unparseable(cfg, n) for n in range(5)] == ["requery", "requery", "stop", "stop", "stop"]
    assert resolve_unparseable(ParserConfig(on_unparseable="requery", max_requeries=0), 0) == "stop"
    for bad in (-1, 1.0, True):
        with pytest.raises(ValueError):
            resolve_unparseable(cfg, bad)


# ---------------------------------------------------------------------------------------------
# Parser: table
# ---------------------------------------------------------------------------------------------

CANONICAL_EXPECTED = [
    (FWD, 0.25), (FWD, 0.5), (FWD, 0.75),
    (LEFT, 15.0), (LEFT, 30.0), (LEFT, 45.0),
    (RIGHT, 15.0), (RIGHT, 30.0), (RIGHT, 45.0),
    (STOP, 0.0),
]


@pytest.mark.parametrize("text, expected", list(zip(CANONICAL_OUTPUTS, CANONICAL_EXPECTED)))
def test_parse_canonical_outputs(text, expected):
    assert parse_action(text) == NavAction(*expected)


PARSE_TABLE = [
    # prefix / no prefix, case, surrounding words
    ("move forward 50 cm", (FWD, 0.5)),
    ("MOVE FORWARD 50 CM.", (FWD, 0.5)),
    ("The next action is Turn Left 30 Degrees.", (LEFT, 30.0)),
    ("Sure! Looking at the hallway, the next action is move forward 75 cm. Hope that helps", (FWD, 0.75)),
    ("The next action is move forward 75cm.", (FWD, 0.75)),
    # length units
    ("move forward 50 centimeters", (FWD, 0.5)),
    ("move forward 50 centimetres", (FWD, 0.5)),
    ("move forward 1 centimeter", (FWD, 0.01)),
    ("move forward 500 mm", (FWD, 0.5)),
    ("move forward 2 m", (FWD, 2.0)),
    ("move forward 2m", (FWD, 2.0)),
    ("move forward 1 meter", (FWD, 1.0)),
    ("move forward 1.5 metres", (FWD, 1.5)),
    ("walk forward 1.5 meters", (FWD, 1.5)),
    ("move forward .5 m", (FWD, 0.5)),
    ("move forward 5e1 cm", (FWD, 0.5)),
    ("move forward 50", (FWD, 0.5)),  # NaVILA's unit: cm
    ("move forward 50, then look around", (FWD, 0.5)),
    # angle units
    ("turn left 30 degree", (LEFT, 30.0)),
    ("turn left 30 degrees", (LEFT, 30.0)),
    ("turn left 30 deg", (LEFT, 30.0)),
    ("turn left 30°", (LEFT, 30.0)),
    ("turn left 30 °", (LEFT, 30.0)),
    ("turn right 90°", (RIGHT, 90.0)),
    ("turn right 22.5 degrees", (RIGHT, 22.5)),
    ("turn left 30", (LEFT, 30.0)),  # NaVILA's unit: degrees
    # word numbers
    ("move forward seventy-five cm", (FWD, 0.75)),
    ("move forward seventy five centimeters", (FWD, 0.75)),
    ("move forward fifty cm", (FWD, 0.5)),
    ("move forward twenty-five centimetres", (FWD, 0.25)),
    ("move forward a hundred cm", (FWD, 1.0)),
    ("move forward one hundred cm", (FWD, 1.0)),
    ("move forward hundred cm", (FWD, 1.0)),
    ("turn left ninety degrees", (LEFT, 90.0)),
    ("turn right fifteen degrees", (RIGHT, 15.0)),
    ("turn right forty five degree", (RIGHT, 45.0)),
    ("turn left one hundred and eighty degrees", (LEFT, 180.0)),
    ("walk forward one meter", (FWD, 1.0)),
    ("walk forward a metre", (FWD, 1.0)),
    ("walk forward two metres", (FWD, 2.0)),
    # verbs, directions, word order, fillers
    ("go forward 1 m", (FWD, 1.0)),
    ("move ahead 50 cm", (FWD, 0.5)),
    ("go straight ahead 2 m", (FWD, 2.0)),
    ("keep going forward 25 cm", (FWD, 0.25)),
    ("proceed forward about 1 m", (FWD, 1.0)),
    ("move forward by approximately 75 cm", (FWD, 0.75)),
    ("move forward a distance of 50 cm", (FWD, 0.5)),
    ("move 50 cm forward", (FWD, 0.5)),
    ("go 2 meters straight ahead", (FWD, 2.0)),
    ("rotate left by 30 degrees", (LEFT, 30.0)),
    ("turn to the left by 30 degrees", (LEFT, 30.0)),
    ("turn slightly right 15 degrees", (RIGHT, 15.0)),
    ("turn 30 degrees to the left", (LEFT, 30.0)),
    ("rotate by 45° to the right", (RIGHT, 45.0)),
    ("turn left, 30 degrees", (LEFT, 30.0)),
    ("spin right 90 degrees", (RIGHT, 90.0)),
    # turn around (180 deg, left unless right is said)
    ("turn around", (LEFT, 180.0)),
    ("Turn around and walk back.", (LEFT, 180.0)),
    ("turn around to the right", (RIGHT, 180.0)),
    ("turn back", (LEFT, 180.0)),
    ("turn 180 degrees", (LEFT, 180.0)),
    ("turn around 180 degrees", (LEFT, 180.0)),
    ("turn around 30 degrees to the left", (LEFT, 30.0)),  # "around" = "about" before a number
    ("turn around to face the door", (LEFT, 180.0)),
    ("turn back right", (RIGHT, 180.0)),
    # no amount -> one primitive (default)
    ("go forward", (FWD, 0.25)),
    ("move ahead", (FWD, 0.25)),
    ("The next action is move forward.", (FWD, 0.25)),
    ("turn left", (LEFT, 15.0)),
    ("turn slightly to the right", (RIGHT, 15.0)),
    ("go to the kitchen and then turn right", (RIGHT, 15.0)),
    # stop wins anywhere (NaVILA's rule), whole word, any case
    ("move forward 50 cm then stop", (STOP, 0.0)),
    ("Stop.", (STOP, 0.0)),
    ("STOP", (STOP, 0.0)),
    ("turn left 30 degrees and STOP there", (STOP, 0.0)),
    ("don't stop", (STOP, 0.0)),
    ("non-stop", (STOP, 0.0)),
    ("walk to the stop sign", (STOP, 0.0)),
    ("it stopped; move forward 25 cm", (FWD, 0.25)),
    ("the unstoppable robot turns left 15 degrees", (LEFT, 15.0)),
    # multiple actions: the first one
    ("turn left 30 degrees and move forward 1 m", (LEFT, 30.0)),
    ("move forward 1 m, then turn right 90 degrees", (FWD, 1.0)),
    ("The next action is move forward 75 cm. The next action is turn left 15 degree.", (FWD, 0.75)),
    ("after the turn, move forward 50 cm", (FWD, 0.5)),  # "turn" without a direction is skipped
    # negated verbs are skipped
    ("don't turn left, move forward 1 m", (FWD, 1.0)),
    ("Do not go forward; turn right 30 degrees", (RIGHT, 30.0)),
    ("I can’t move forward, so turn left 45 degree", (LEFT, 45.0)),
    # limits (default reject above 3 m / 180 deg; exactly the limit passes)
    ("move forward 300 cm", (FWD, 3.0)),
    ("turn right 180 degrees", (RIGHT, 180.0)),
]


@pytest.mark.parametrize("text, expected", PARSE_TABLE)
def test_parse_table(text, expected):
    action = parse_action(text)
    assert action is not None, text
    assert action.kind == expected[0]
    assert action.amount == pytest.approx(expected[1], rel=1e-12, abs=0.0)


NONE_TABLE = [
    "", " ", "hello", "I see a kitchen with a table.", "The next action is", "forward", "left 30 degrees",
    "move left", "go back", "move 50 cm", "turn 30 degrees", "turn around 30 degrees", "turn around about 30 degrees", "turn around the corner",
    "turn your head left",
    # zero / negative amounts
    "move forward 0 cm", "move forward zero cm", "turn left 0 degrees", "move forward -50 cm",
    "turn right −30°", "turn left -15", "move forward 1e-400 m",
    # non-finite and absurd
    "move forward nan cm", "move forward NaN", "turn left inf degrees", "move forward infinity",
    "move forward 1e309 m", "move forward " + "9" * 400 + " cm", "move forward 10000 m",
    "move forward 3.01 m", "turn left 181 degrees", "turn left 720 degrees", "turn left 1e6 degrees",
    # ambiguous / vague / wrong units
    "move forward 1,5 m", "move forward 1,000 cm", "move forward 1.2.3 m", "move forward a few meters",
    "turn left 50 cm", "move forward 30 degrees", "move forward 5 seconds", "move forward 3 steps",
    "move forward 10 feet", "take 2 steps forward", "never move forward", "you should not turn left",
    # first action decides: an unreadable first amount is not rescued by a later action
    "move forward -1 m then turn left 30 degrees",
]


@pytest.mark.parametrize("text", NONE_TABLE)
def test_parse_none(text):
    assert parse_action(text) is None


@pytest.mark.parametrize("value", [None, 5, 3.5, b"move forward 50 cm", ["stop"], object()])
def test_parse_non_str(value):
    assert parse_action(value) is None  # type: ignore[arg-type]


def test_parse_odd_strings():
    class Hostile(str):
        def lower(self):
            raise RuntimeError("no")

        def __getitem__(self, item):
            raise RuntimeError("no")

    assert parse_action(Hostile("turn left 30 degrees")) == NavAction(LEFT, 30.0)
    assert parse_action("turn left 30 degrees \ud800\x00") == NavAction(LEFT, 30.0)  # lone surrogate, NUL
    assert parse_action("\u0130" * 5000 + "stop") is None  # lower() grows the text; still capped first


def test_parse_bad_cfg_is_type_error():
    with pytest.raises(TypeError):
        parse_action("stop", cfg={"over_limit": "clamp"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("move forward 10000 m", (FWD, 3.0)),
        ("move forward 3.5 m", (FWD, 3.0)),
        ("turn left 720 degrees", (LEFT, 180.0)),
        ("move forward 2 m", (FWD, 2.0)),
    ],
)
def test_over_limit_clamp(text, expected):
    assert parse_action(text, ParserConfig(over_limit="clamp")) == NavAction(*expected)


@pytest.mark.parametrize("text", ["move forward 1e309 m", "move forward nan cm", "move forward -5 m",
                                  "move forward 0 m"])
def test_clamp_never_rescues_invalid_amounts(text):
    assert parse_action(text, ParserConfig(over_limit="clamp")) is None


def test_custom_limits_and_defaults():
    cfg = ParserConfig(max_forward_m=1.0, max_turn_deg=90.0)
    assert parse_action("move forward 1 m", cfg) == NavAction(FWD, 1.0)
    assert parse_action("move forward 1.25 m", cfg) is None
    assert parse_action("turn around", cfg) is None
    assert parse_action("turn around", ParserConfig(max_turn_deg=90.0, over_limit="clamp")) == NavAction(LEFT, 90.0)
    no_defaults = ParserConfig(default_forward_m=0.0, default_turn_deg=0.0)
    assert parse_action("go forward", no_defaults) is None
    assert parse_action("turn left", no_defaults) is None
    assert parse_action("go forward 50 cm", no_defaults) == NavAction(FWD, 0.5)
    assert parse_action("go forward", ParserConfig(default_forward_m=0.75)) == NavAction(FWD, 0.75)


def test_input_is_capped():
    filler = "x" * 5000
    assert parse_action(filler + " stop") is None  # beyond max_input_chars: not read
    assert parse_action(filler + " stop", ParserConfig(max_input_chars=6000)) == NavAction(STOP)
    assert parse_action("move forward 50 cm " + filler) == NavAction(FWD, 0.5)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "text",
    [
        "move forward " * 100_000,
        "turn " * 200_000,
        "1" * 1_000_000,
        "1," * 500_000,
        "seventy " * 100_000,
        "a " * 500_000,
        "-" * 1_000_000,
    ],
)
def test_huge_adversarial_inputs_return(text):
    # Work is bounded by max_input_chars; these return at once (a hang would hit the timeout).
    result = parse_action(text)
    assert result is None or math.isfinite(result.amount)


# ---------------------------------------------------------------------------------------------
# Parser: property-based fuzzing
# ---------------------------------------------------------------------------------------------


def _check_result(result: NavAction | None, cfg: ParserConfig | None = None) -> None:
    cfg = cfg or ParserConfig()
    if result is None:
        return
    assert isinstance(result, NavAction)
    assert math.isfinite(result.amount) and result.amount >= 0.0
    if result.kind == "stop":
        assert result.amount == 0.0
    else:
        assert result.amount > 0.0
        limit = cfg.max_forward_m if result.kind == FWD else cfg.max_turn_deg
        assert result.amount <= limit
    assert 1 <= len(to_primitives(result)) <= MAX_PRIMITIVES


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_any_text(text):
    _check_result(parse_action(text))


_ALPHABET = st.sampled_from(list("0123456789.,-−e °º abcdefghilmnorstuvw") + ["forward", "turn", "left", "cm"])


@FUZZ
@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_fuzz_action_alphabet(text):
    _check_result(parse_action(text))


_NUMBER_TEXT = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.integers(min_value=0, max_value=400).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=1000).map(lambda x: f"{x:.3f}"),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "1e-400", "9" * 500, "1,5", ".5", "0", "00", "seventy-five",
                     "seventy five", "a hundred", "one hundred and eighty", "zero", "ninety", "a", "-0"]),
)
_SENTENCE = st.tuples(
    st.sampled_from(["", "The next action is ", "I think the next action is to ", "Now "]),
    st.sampled_from(["move", "go", "walk", "turn", "rotate", "Move", "TURN", "head"]),
    st.sampled_from(["forward", "ahead", "left", "right", "to the left", "around", "straight", ""]),
    st.sampled_from(["", "by", "about", "a"]),
    _NUMBER_TEXT,
    st.sampled_from(["cm", "m", "meters", "metres", "mm", "degree", "degrees", "deg", "°", "", "seconds", "km"]),
    st.sampled_from(["", ".", " and then turn left 30 degrees.", " then stop", "!"]),
).map(lambda p: " ".join(x for x in p if x))


@FUZZ
@given(_SENTENCE, st.sampled_from(["reject", "clamp"]))
def test_fuzz_near_valid_sentences(text, over_limit):
    cfg = ParserConfig(over_limit=over_limit)
    _check_result(parse_action(text, cfg), cfg)


@FUZZ
@given(st.integers(min_value=-1000, max_value=100_000))
def test_forward_cm_exact(n):
    result = parse_action(f"The next action is move forward {n} cm.")
    if 0 < n <= 300:
        assert result == NavAction(FWD, n / 100)
    else:
        assert result is None
    clamped = parse_action(f"move forward {n} cm", ParserConfig(over_limit="clamp"))
    assert clamped == (NavAction(FWD, min(n / 100, 3.0)) if n > 0 else None)


@FUZZ
@given(st.sampled_from(["left", "right"]), st.floats(min_value=0.001, max_value=180.0))
def test_turn_decimal_degrees(side, deg):
    text = f"turn {side} {deg!r} degrees"
    assert parse_action(text) == NavAction(f"turn_{side}", deg)


# ---------------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------------

F, L, R = "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT"


@pytest.mark.parametrize(
    "action, kwargs, expected",
    [
        (NavAction(STOP), {}, ["STOP"]),
        (NavAction(FWD, 0.25), {}, [F]),
        (NavAction(FWD, 0.75), {}, [F] * 3),
        (NavAction(FWD, 1.0), {}, [F] * 4),  # multiples of 25 cm pass through
        (NavAction(FWD, 1.5), {}, [F] * 6),
        (NavAction(FWD, 0.6), {}, [F] * 2),  # 60 cm -> 50 cm
        (NavAction(FWD, 0.3), {}, [F]),  # 30 cm -> 25 cm
        (NavAction(FWD, 0.01), {}, [F]),  # anything > 0 is at least one step
        (NavAction(FWD, 0.375), {}, [F]),  # tie 25/50 -> smaller
        (NavAction(FWD, 0.625), {}, [F] * 2),  # tie 50/75 -> smaller
        (NavAction(FWD, 1.1), {}, [F] * 3),  # not a multiple: nearest of 25/50/75
        (NavAction(FWD, 3.0), {}, [F] * 12),
        (NavAction(FWD, 5.0), {}, [F] * 12),  # cap
        (NavAction(FWD, 0.0), {}, []),
        (NavAction(LEFT, 20.0), {}, [L]),  # 20 deg -> 15
        (NavAction(LEFT, 90.0), {}, [L] * 6),
        (NavAction(RIGHT, 40.0), {}, [R] * 3),
        (NavAction(RIGHT, 180.0), {}, [R] * 12),
        (NavAction(RIGHT, 360.0), {}, [R] * 12),  # cap
        (NavAction(RIGHT, 100.0), {}, [R] * 3),  # NaVILA: non-multiple -> 15/30/45
        (NavAction(FWD, 1.5), {"max_primitives": 4}, [F] * 4),
        (NavAction(FWD, 1.5), {"forward_step": 0.5}, [F] * 3),
        (NavAction(FWD, 0.1 * 3), {"forward_step": 0.1}, [F] * 3),  # 0.30000000000000004 / 0.1
        (NavAction(LEFT, 30.0), {"turn_step": 10.0}, [L] * 3),
        (NavAction(LEFT, 1e300), {"turn_step": 1e-300}, [L] * 12),  # ratio overflows to inf
    ],
)
def test_to_primitives(action, kwargs, expected):
    assert to_primitives(action, **kwargs) == expected


@pytest.mark.parametrize(
    "kwargs", [{"forward_step": 0.0}, {"forward_step": -1.0}, {"turn_step": math.nan}, {"max_primitives": 0},
               {"max_primitives": 2.0}],
)
def test_to_primitives_bad_args(kwargs):
    with pytest.raises(ValueError):
        to_primitives(NavAction(FWD, 1.0), **kwargs)


def test_to_primitives_needs_action():
    with pytest.raises(TypeError):
        to_primitives("MOVE_FORWARD")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", list(CANONICAL_OUTPUTS))
def test_canonical_primitive_counts(text):
    action = parse_action(text)
    n = {"stop": 1}.get(action.kind) or round(action.amount / (0.25 if action.kind == FWD else 15.0))
    assert len(to_primitives(action)) == n


# ---------------------------------------------------------------------------------------------
# Labels and sentences
# ---------------------------------------------------------------------------------------------


def test_merge_primitives_examples():
    assert merge_primitives([F] * 7) == [NavAction(FWD, 0.75), NavAction(FWD, 0.75), NavAction(FWD, 0.25)]
    assert merge_primitives([L, L, R, F, F, "STOP", "STOP"]) == [
        NavAction(LEFT, 30.0), NavAction(RIGHT, 15.0), NavAction(FWD, 0.5), NavAction(STOP), NavAction(STOP)]
    assert merge_primitives([F] * 4, max_merge=4) == [NavAction(FWD, 1.0)]
    assert merge_primitives([F] * 3, max_merge=1) == [NavAction(FWD, 0.25)] * 3
    assert merge_primitives([]) == []
    assert merge_primitives((L, L), turn_step=10.0) == [NavAction(LEFT, 20.0)]


@pytest.mark.parametrize("bad", [["FORWARD"], [F, "stop"], [F, 1], [None]])
def test_merge_primitives_unknown(bad):
    with pytest.raises(ValueError, match="unknown primitive"):
        merge_primitives(bad)


def test_merge_primitives_rejects_a_string():
    with pytest.raises(TypeError):
        merge_primitives("STOP")  # type: ignore[arg-type]


@pytest.mark.parametrize("max_merge", [0, -1, 1.5])
def test_merge_primitives_bad_max_merge(max_merge):
    with pytest.raises(ValueError):
        merge_primitives([F], max_merge=max_merge)


@FUZZ
@given(
    st.lists(st.sampled_from(PRIMITIVES), max_size=60),
    st.integers(min_value=1, max_value=MAX_PRIMITIVES),
    st.floats(min_value=0.01, max_value=5.0),
    st.floats(min_value=0.5, max_value=90.0),
)
def test_merge_then_expand_round_trip(primitives, max_merge, forward_step, turn_step):
    actions = merge_primitives(primitives, max_merge, forward_step=forward_step, turn_step=turn_step)
    expanded = [p for a in actions for p in to_primitives(a, forward_step, turn_step)]
    assert expanded == primitives


@pytest.mark.parametrize("text", list(CANONICAL_OUTPUTS))
def test_format_parse_round_trip_canonical(text):
    assert format_action(parse_action(text)) == text


@pytest.mark.parametrize("primitive", ["MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT"])
@pytest.mark.parametrize("k", range(1, MAX_PRIMITIVES + 1))
def test_label_sentence_round_trip(primitive, k):
    # Every label merge_primitives can make (up to the cap) survives format -> parse exactly.
    (action,) = merge_primitives([primitive] * k, max_merge=MAX_PRIMITIVES)
    assert parse_action(format_action(action)) == action


def test_format_action_rounding():
    assert format_action(NavAction(FWD, 0.29)) == "The next action is move forward 29 cm."
    assert format_action(NavAction(FWD, 0.125)) == "The next action is move forward 13 cm."  # half up
    assert format_action(NavAction(LEFT, 22.5)) == "The next action is turn left 23 degree."
    assert format_action(NavAction(RIGHT, 90.0)) == "The next action is turn right 90 degree."
    assert format_action(NavAction(STOP)) == STOP_SENTENCE
    with pytest.raises(TypeError):
        format_action("stop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too large"):
        format_action(NavAction(FWD, 1e307))


# ---------------------------------------------------------------------------------------------
# Purity
# ---------------------------------------------------------------------------------------------


def test_import_is_pure():
    code = (
        "import sys, vila_nav.actions\n"
        "heavy = ('torch', 'rclpy', 'hydra', 'omegaconf', 'numpy', 'transformers')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
