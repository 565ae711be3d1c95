"""The action language: NaVILA's mid-level actions, their parser, and VLN-CE primitives.

A VILA navigation model answers each query with one sentence naming a mid-level action, e.g.
"The next action is move forward 75 cm." This module turns such text into a `NavAction`
(`parse_action`), a `NavAction` into the VLN-CE discrete primitives a simulator executes
(`to_primitives`), primitives back into actions for training labels (`merge_primitives`), and an
action into NaVILA's canonical sentence (`format_action`). Pure Python: stdlib only, no torch,
rclpy or hydra, so it runs everywhere the robot or the evaluator does.

Units: forward amounts are metres, turn amounts are degrees (NaVILA's own sentences use
centimetres; the parser converts). Turning left is counter-clockwise seen from above (positive
yaw, REP 103).

The accepted language (what `parse_action` reads)
-------------------------------------------------
The text is cut to its first `ParserConfig.max_input_chars` (4096) characters (nothing after
that is read, not even "stop") and read case-insensitively. Then, in this order:

1. Stop wins. If the word "stop" occurs anywhere, as a whole word in any case (regex
   `\\bstop\\b`), the answer is the stop action, whatever else the text says. This is NaVILA's
   rule and is kept as is, with its consequences: "move forward 50 cm then stop", "don't stop",
   "non-stop" and "go to the stop sign" all parse as stop; "stopped", "stops" and
   "unstoppable" do not. On a robot a spurious stop is the safe mistake.
2. Otherwise the FIRST motion phrase in the text is the answer; later phrases are ignored
   ("turn left 30 degrees and move forward 1 m" is a 30 deg left turn). A motion phrase starts at
   a verb:
     forward verbs: move, go, walk, drive, head, proceed, step, advance, travel, continue, roll
                    and their -s/-ing forms ("moves", "keep going forward"), except "steps"
                    (read as a noun: "take 2 steps forward" is not understood)
     turn verbs:    turn, rotate, spin, pivot, veer and their -s/-ing forms
   and has one of these shapes (words in [] optional, ... = up to 5 of "to", "the", "your",
   "slightly", "a", "little", "bit", "further", "farther"):
     VERB ... DIRECTION [fillers] [AMOUNT]     "move forward 50 cm", "turn to the left by 30°"
     VERB [fillers] AMOUNT [to the] DIRECTION  "move 2 m forward", "turn 30 degrees to the right"
     TURN-VERB around|back [[to the] left|right] END
                                               "turn around" = 180 deg (left unless "right"
                                               follows), "turn back" likewise; END = end of
                                               text, punctuation or a clause word (and, then,
                                               to, ... listed under 3.). Otherwise "around"
                                               is a filler meaning "about" ("turn around 30
                                               degrees to the left" = 30 deg left) and
                                               "turn around the corner" is not understood.
     TURN-VERB [fillers] 180 deg               a half turn needs no direction; left is used
   Directions: forward, forwards, ahead, straight, onward(s) for forward verbs; left, right for
   turn verbs. A forward verb with left/right ("go left") or a turn verb with forward is not an
   action (ambiguous), nor is a verb without a direction ("move 50 cm"): scanning goes on to the
   next verb. So "The next action is ..." is optional, and surrounding words are ignored.
   A verb directly after a negation (not, never, don't, doesn't, cannot, can't, no) is skipped:
   "don't turn left, move forward 1 m" is a 1 m forward move.
   Fillers before an amount (up to 5): by, about, approximately, approx, around, roughly, nearly,
   almost, exactly, just, only, for, of, some, another, additional, further, a, an, the, to,
   distance, total, angle, few, several, couple, and "," ":".
3. AMOUNT is a number, optionally followed by a unit:
     numbers: digits with an optional decimal point ("75", "1.5", ".5"), scientific notation
              ("5e1"), or English words up to nine hundred ninety-nine: "zero" .. "nineteen",
              "twenty" .. "ninety", compounds hyphenated or spaced ("seventy-five",
              "seventy five"), "hundred", "a hundred", "one hundred [and] eighty"; "a"/"an"
              directly before a unit means 1 ("walk forward a metre"). A minus sign makes it
              negative (rejected); "nan", "inf", "infinity" are read as invalid numbers.
     length units (forward): cm, centimeter(s), centimetre(s), mm, millimeter(s),
              millimetre(s), m, meter(s), metre(s)
     angle units (turns):    deg, degs, degree, degrees, °, º
   No unit means NaVILA's unit: centimetres for forward, degrees for turns ("move forward 50"
   = 50 cm), but only when the number ends the clause (end of text, punctuation, or one of
   and, then, to, toward(s), until, till, into, through, past, or, before, after, along,
   across, so, now, please, again, or a direction word). Any other word after the number
   ("5 seconds", "3 steps", "10 feet") makes the action unreadable.
4. A motion phrase with no amount gets the configured default (`default_forward_m` = 0.25 m,
   `default_turn_deg` = 15 deg: one primitive, NaVILA's own fallback); set the default to 0 to
   make such phrases unparseable instead.

The first motion phrase found decides: if its amount is unreadable the whole text is
unparseable (None), even when a later phrase would be fine. Unreadable amounts: negative
("-50 cm"), zero ("0 cm": no motion is not an action; stop must be said), non-finite ("nan",
"inf", "1e309"), ambiguous ("1,5 m", "1,000 cm", "1.2.3"), vague ("a few meters"), a unit of
the wrong kind ("turn left 50 cm"), and amounts above `max_forward_m` (3.0 m) /
`max_turn_deg` (180 deg), which are rejected by default or clamped to the limit with
`over_limit="clamp"` (non-finite amounts are always rejected). Amounts that survive are finite
and > 0. `parse_action` returns None for anything else and never raises for any input, str or
not; its work is linear in the (capped) text length.

What to do with None is `ParserConfig.on_unparseable` ("stop", the default: a safe stop; or
"requery": hold still and ask the model again up to `max_requeries` times, then stop); see
`resolve_unparseable`.
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Sequence

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

KINDS: tuple[str, ...] = ("forward", "turn_left", "turn_right", "stop")

# VLN-CE / habitat discrete actions, in id order (0 = STOP, 1 = MOVE_FORWARD, 2 = TURN_LEFT,
# 3 = TURN_RIGHT).
PRIMITIVES: tuple[str, ...] = ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")
PRIMITIVE_IDS: dict[str, int] = {"STOP": 0, "MOVE_FORWARD": 1, "TURN_LEFT": 2, "TURN_RIGHT": 3}

STOP_SENTENCE = "I think I should stop because I have finished the instruction."

# The ten answers of NaVILA's R2R training labels, byte for byte ("degree" singular, integer cm).
CANONICAL_OUTPUTS: tuple[str, ...] = (
    *(f"The next action is move forward {cm} cm." for cm in (25, 50, 75)),
    *(f"The next action is turn left {deg} degree." for deg in (15, 30, 45)),
    *(f"The next action is turn right {deg} degree." for deg in (15, 30, 45)),
    STOP_SENTENCE,
)

# Default primitive sizes (VLN-CE: 0.25 m forward step, 15 deg turn) and the cap on primitives
# one action may expand to (12 x 0.25 m = 3 m, 12 x 15 deg = 180 deg).
FORWARD_STEP_M = 0.25
TURN_STEP_DEG = 15.0
MAX_PRIMITIVES = 12

_KIND_TO_PRIMITIVE = {"forward": "MOVE_FORWARD", "turn_left": "TURN_LEFT", "turn_right": "TURN_RIGHT",
                      "stop": "STOP"}
_PRIMITIVE_TO_KIND = {p: k for k, p in _KIND_TO_PRIMITIVE.items()}

# A ratio amount/step within this many steps of an integer counts as a multiple of the step
# (0.75 / 0.25 and 0.3 * 3 / 0.3 are not exact in floating point).
_MULTIPLE_TOL = 1e-6


def _is_real(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


# ---------------------------------------------------------------------------------------------
# Actions and configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NavAction:
    """One mid-level navigation action.

    kind:   "forward", "turn_left", "turn_right" or "stop".
    amount: metres for "forward", degrees for turns, 0.0 for "stop"; finite and >= 0 (stored as
            float). A zero motion is a valid value (it expands to no primitives) but the parser
            never produces one.
    """

    kind: str
    amount: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"NavAction.kind must be one of {KINDS}, got {self.kind!r}")
        if not _is_real(self.amount):
            raise TypeError(f"NavAction.amount must be a real number, got {type(self.amount).__name__}")
        amount = float(self.amount)
        if not math.isfinite(amount) or amount < 0.0:
            raise ValueError(f"NavAction.amount must be finite and >= 0, got {amount!r}")
        if self.kind == "stop" and amount != 0.0:
            raise ValueError(f"a stop action has amount 0.0, got {amount!r}")
        object.__setattr__(self, "amount", amount)


TURN_REVERSAL_POLICIES = ("allow", "forward")  # ParserConfig.on_turn_reversal (vila_nav.turn_guard)


def check_turn_reversal(value: str, key: str = "on_turn_reversal") -> str:
    """`value` if it is one of TURN_REVERSAL_POLICIES, else a ValueError naming the setting `key`."""
    if value not in TURN_REVERSAL_POLICIES:
        raise ValueError(f"{key} must be one of {TURN_REVERSAL_POLICIES}, got {value!r}")
    return value


@dataclass
class ParserConfig:
    """How `parse_action` reads model text and what to do when it cannot.

    Each field's `doc` says what it does (and is what `ros2 param describe` shows for the node's
    parser.* parameters). Non-finite amounts are rejected whatever over_limit says. Unparseable
    text: see `resolve_unparseable`; turn reversals: vila_nav.turn_guard.
    """

    max_input_chars: int = field(default=4096, metadata={
        "doc": "only the first this many characters are read (bounded work on huge text)"})
    max_forward_m: float = field(default=3.0, metadata={
        "doc": "largest forward amount accepted, m (3.0 = 12 primitives)"})
    max_turn_deg: float = field(default=180.0, metadata={"doc": "largest turn accepted, deg (180: \"turn around\")"})
    over_limit: str = field(default="reject", metadata={
        "doc": "an amount over the limit: reject (the text is unparseable) | clamp (the amount becomes the limit)"})
    default_forward_m: float = field(default=FORWARD_STEP_M, metadata={
        "doc": "amount for a forward phrase without one, m; 0 = such text is unparseable"})
    default_turn_deg: float = field(default=TURN_STEP_DEG, metadata={
        "doc": "amount for a turn phrase without one, deg; 0 = such text is unparseable"})
    on_unparseable: str = field(default="stop", metadata={
        "doc": "stop (the robot stops safely) | requery (hold at zero velocity and ask again, at most "
               "max_requeries times in a row, then stop)"})
    max_requeries: int = field(default=2, metadata={
        "doc": "re-queries allowed for one decision when on_unparseable is requery"})
    on_turn_reversal: str = field(default="forward", metadata={
        "doc": "forward (a turn right after a turn in place the other way becomes one 25 cm forward step: "
               "breaks left-right loops in place) | allow (NaVILA's exact policy: every answer runs as given)"})

    def __post_init__(self) -> None:
        for name in ("max_input_chars", "max_requeries"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"ParserConfig.{name} must be an int, got {value!r}")
        if self.max_input_chars < 1:
            raise ValueError(f"ParserConfig.max_input_chars must be >= 1, got {self.max_input_chars}")
        if self.max_requeries < 0:
            raise ValueError(f"ParserConfig.max_requeries must be >= 0, got {self.max_requeries}")
        for name in ("max_forward_m", "max_turn_deg", "default_forward_m", "default_turn_deg"):
            value = getattr(self, name)
            if not _is_real(value):
                raise TypeError(f"ParserConfig.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0.0:
                raise ValueError(f"ParserConfig.{name} must be finite and >= 0, got {value!r}")
            setattr(self, name, float(value))
        if self.max_forward_m <= 0.0 or self.max_turn_deg <= 0.0:
            raise ValueError(
                f"ParserConfig limits must be > 0, got max_forward_m={self.max_forward_m}, "
                f"max_turn_deg={self.max_turn_deg}"
            )
        if self.default_forward_m > self.max_forward_m:
            raise ValueError(
                f"ParserConfig.default_forward_m ({self.default_forward_m}) exceeds max_forward_m "
                f"({self.max_forward_m})"
            )
        if self.default_turn_deg > self.max_turn_deg:
            raise ValueError(
                f"ParserConfig.default_turn_deg ({self.default_turn_deg}) exceeds max_turn_deg "
                f"({self.max_turn_deg})"
            )
        if self.over_limit not in ("reject", "clamp"):
            raise ValueError(f"ParserConfig.over_limit must be 'reject' or 'clamp', got {self.over_limit!r}")
        check_turn_reversal(self.on_turn_reversal, "ParserConfig.on_turn_reversal")
        if self.on_unparseable not in ("stop", "requery"):
            raise ValueError(
                f"ParserConfig.on_unparseable must be 'stop' or 'requery', got {self.on_unparseable!r}"
            )


def resolve_unparseable(cfg: ParserConfig | None, attempts: int) -> str:
    """What to do after the model's text parsed to None: "requery" or "stop".

    attempts: re-queries already made for the current decision (0 when the first unparseable
    answer arrives; reset it whenever an answer parses). With on_unparseable="requery" and
    max_requeries=2 the answers are: attempts 0 -> "requery", 1 -> "requery", 2 -> "stop", i.e.
    at most 1 + 2 model calls per decision. "requery" means hold at zero velocity and ask again;
    "stop" means stop (end the episode / stop the robot). With on_unparseable="stop" it is always
    "stop".
    """
    cfg = ParserConfig() if cfg is None else cfg
    if not isinstance(cfg, ParserConfig):
        raise TypeError(f"cfg must be a ParserConfig, got {type(cfg).__name__}")
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
        raise ValueError(f"attempts must be an int >= 0, got {attempts!r}")
    if cfg.on_unparseable == "requery" and attempts < cfg.max_requeries:
        return "requery"
    return "stop"


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------

_STOP_RE = re.compile(r"\bstop\b", re.IGNORECASE)

# Tokens of the lower-cased text, left to right; everything else (spaces, hyphens, quotes ...)
# separates tokens. No nested quantifiers can overlap, so matching is linear in the text.
#   num:   "75", "1.5", ".5", "5e1"; commas/extra dots kept in the token so "1,5" and "1.2.3"
#          can be rejected as ambiguous instead of being read as "1".
#   word:  ASCII letter runs, or a degree sign.
#   minus: a minus sign directly before a number (a negative amount).
#   punct: clause punctuation, which may end a unit-less number.
_TOKEN_RE = re.compile(
    r"(?P<num>(?:[0-9]+(?:[.,][0-9]+)*|\.[0-9]+)(?:e[+-]?[0-9]+)?)"
    r"|(?P<word>[a-z]+|[\u00b0\u00ba])"
    r"|(?P<minus>[-\u2212](?=\.?[0-9]))"
    r"|(?P<punct>[.,;:!?()\[\]])"
)
_PLAIN_NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:e[+-]?[0-9]+)?")

_FORWARD_VERBS = frozenset(
    "move moves moving go goes going walk walks walking drive drives driving head heads heading "
    "proceed proceeds proceeding step stepping advance advances advancing travel travels "
    "travelling traveling continue continues continuing roll rolls rolling".split()
)
_TURN_VERBS = frozenset(
    "turn turns turning rotate rotates rotating spin spins spinning pivot pivots pivoting "
    "veer veers veering".split()
)
_FORWARD_DIRS = frozenset("forward forwards ahead straight onward onwards".split())
_TURN_DIRS = {"left": "turn_left", "right": "turn_right"}
_VERB_GAP = frozenset("to the your slightly a little bit further farther".split())
_AMOUNT_FILLERS = frozenset(
    "by about approximately approx around roughly nearly almost exactly just only for of some "
    "another additional further a an the to distance total angle few several couple , :".split()
)
_TO_THE = frozenset("to the your".split())
_CLAUSE_ENDERS = frozenset(
    "and then to toward towards until till into through past or before after along across so "
    "now please again".split()
) | _FORWARD_DIRS | frozenset(_TURN_DIRS)
_BAD_NUMBER_WORDS = frozenset("nan inf infinity infinite".split())
# A verb right after one of these is negated and skipped ("don't" tokenizes as "don", "t").
_NEGATIONS = frozenset("not never t dont doesnt cannot cant no".split())

# Units: forward amounts are divided by the divisor to get metres (division keeps 75/100 exact).
_LENGTH_DIVISORS = {
    "cm": 100.0, "centimeter": 100.0, "centimeters": 100.0, "centimetre": 100.0, "centimetres": 100.0,
    "mm": 1000.0, "millimeter": 1000.0, "millimeters": 1000.0, "millimetre": 1000.0, "millimetres": 1000.0,
    "m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0,
}
_ANGLE_UNITS = frozenset(["deg", "degs", "degree", "degrees", "\u00b0", "\u00ba"])
_UNITS = frozenset(_LENGTH_DIVISORS) | _ANGLE_UNITS
_NO_UNIT_DIVISOR = 100.0  # a unit-less forward number is NaVILA's centimetres

_SMALL_NUMBERS = {
    w: i for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}

_MAX_GAP = 5  # filler words skipped between a verb and its direction, or before an amount

# Outcome of reading an amount slot.
_NONE, _BAD, _OK = "none", "bad", "ok"


class _NoMatch:
    """Marker: no motion phrase starts at this verb; keep scanning."""


_NO_MATCH = _NoMatch()


def _tokenize(text: str) -> list[tuple[str, str]]:
    """Lower-cased text -> [(kind, text)], kind in num/word/minus/punct."""
    return [(m.lastgroup or "", m.group()) for m in _TOKEN_RE.finditer(text)]


def _word(tokens: list[tuple[str, str]], i: int) -> str | None:
    """The token at i if it is a word (or punctuation), else None."""
    if 0 <= i < len(tokens) and tokens[i][0] in ("word", "punct"):
        return tokens[i][1]
    return None


def _below_100(tokens: list[tuple[str, str]], i: int) -> tuple[int, int] | None:
    """English words for 0..99 at i -> (value, next index)."""
    w = _word(tokens, i)
    if w in _TENS:
        value = _TENS[w]
        unit = _SMALL_NUMBERS.get(_word(tokens, i + 1) or "")
        if unit is not None and 1 <= unit <= 9:  # "seventy five", "seventy-five"
            return value + unit, i + 2
        return value, i + 1
    if w in _SMALL_NUMBERS:
        return _SMALL_NUMBERS[w], i + 1
    return None


def _word_number(tokens: list[tuple[str, str]], i: int) -> tuple[float, int] | None:
    """English number words at i (0..999, "a"/"an" before a unit = 1) -> (value, next index)."""
    w = _word(tokens, i)
    if w is None:
        return None
    if w in ("a", "an"):
        nxt = _word(tokens, i + 1)
        if nxt == "hundred":
            value, j = 100, i + 2
        elif nxt in _UNITS:
            return 1.0, i + 1
        else:
            return None
    elif w == "hundred":
        value, j = 100, i + 1
    else:
        head = _below_100(tokens, i)
        if head is None:
            return None
        value, j = head
        if not (1 <= value <= 9 and _word(tokens, j) == "hundred"):
            return float(value), j
        value, j = value * 100, j + 1
    # After "hundred": optional "and" then 1..99 ("one hundred and eighty").
    k = j + 1 if _word(tokens, j) == "and" else j
    tail = _below_100(tokens, k)
    if tail is not None and tail[0] >= 1:
        return float(value + tail[0]), tail[1]
    return float(value), j


def _number(tokens: list[tuple[str, str]], i: int) -> tuple[float, int] | None:
    """A number starting at token i -> (value, next index), or None if none starts there.

    Values that must be rejected come back as nan (ambiguous or "nan"/"inf" words) or negative.
    """
    if i >= len(tokens):
        return None
    kind, text = tokens[i]
    if kind == "minus":  # the tokenizer only emits it right before a "num" token
        inner = _number(tokens, i + 1)
        if inner is None:
            return math.nan, i + 1
        return -inner[0], inner[1]  # negative (or nan): rejected by the caller
    if kind == "num":
        if not _PLAIN_NUMBER_RE.fullmatch(text):  # "1,5", "1,000", "1.2.3": ambiguous
            return math.nan, i + 1
        return float(text), i + 1  # float() never raises here; huge -> inf (rejected later)
    if kind == "word" and text in _BAD_NUMBER_WORDS:
        return math.nan, i + 1
    return _word_number(tokens, i)


def _amount(tokens: list[tuple[str, str]], i: int, kind: str) -> tuple[str, float, int]:
    """Read an amount slot at token i for an action of `kind` ("forward" or "turn").

    Returns (status, value, next index): status "none" (no amount here), "bad" (an amount that is
    unreadable) or "ok" with the value in metres (forward) or degrees (turn), not yet checked
    against limits.
    """
    j = i
    for _ in range(_MAX_GAP):
        if _number(tokens, j) is None and _word(tokens, j) in _AMOUNT_FILLERS:
            j += 1
        else:
            break
    if _word(tokens, j) in _UNITS:  # a unit without a number: "a few meters"
        return _BAD, math.nan, j
    num = _number(tokens, j)
    if num is None:
        return _NONE, 0.0, i
    value, j = num
    nxt = _word(tokens, j)
    if nxt in _UNITS:
        if kind == "forward" and nxt in _LENGTH_DIVISORS:
            return _OK, value / _LENGTH_DIVISORS[nxt], j + 1
        if kind == "turn" and nxt in _ANGLE_UNITS:
            return _OK, value, j + 1
        return _BAD, math.nan, j + 1  # a unit of the wrong kind
    if j >= len(tokens) or tokens[j][0] == "punct" or nxt in _CLAUSE_ENDERS:
        return _OK, (value / _NO_UNIT_DIVISOR if kind == "forward" else value), j
    return _BAD, math.nan, j  # "5 seconds", "3 steps", "2 2": not a distance/angle we know


def _skip(tokens: list[tuple[str, str]], i: int, words: frozenset[str]) -> int:
    j = i
    while j - i < _MAX_GAP and _word(tokens, j) in words:
        j += 1
    return j


def _finish(kind: str, status: str, value: float, cfg: ParserConfig) -> NavAction | None:
    """Apply defaults, validity and limits to a recognised motion phrase."""
    if status == _BAD:
        return None
    if status == _NONE:
        value = cfg.default_forward_m if kind == "forward" else cfg.default_turn_deg
    if not math.isfinite(value) or value <= 0.0:  # nan/inf/negative/zero: not an action
        return None
    limit = cfg.max_forward_m if kind == "forward" else cfg.max_turn_deg
    if value > limit * (1.0 + 1e-9):
        if cfg.over_limit == "reject":
            return None
        value = limit
    return NavAction(kind, min(value, limit))


def _match_forward(tokens: list[tuple[str, str]], v: int, cfg: ParserConfig) -> NavAction | None | _NoMatch:
    # VERB ... DIRECTION [AMOUNT]
    j = _skip(tokens, v + 1, _VERB_GAP)
    if _word(tokens, j) in _FORWARD_DIRS:
        j = _skip(tokens, j + 1, _FORWARD_DIRS)  # "straight ahead"
        status, value, _ = _amount(tokens, j, "forward")
        return _finish("forward", status, value, cfg)
    # VERB [fillers] AMOUNT [to the] DIRECTION
    status, value, j = _amount(tokens, v + 1, "forward")
    if status != _NONE and _word(tokens, _skip(tokens, j, _TO_THE)) in _FORWARD_DIRS:
        return _finish("forward", status, value, cfg)
    return _NO_MATCH


def _match_turn(tokens: list[tuple[str, str]], v: int, cfg: ParserConfig) -> NavAction | None | _NoMatch:
    # VERB ... left|right [AMOUNT]
    j = _skip(tokens, v + 1, _VERB_GAP)
    direction = _TURN_DIRS.get(_word(tokens, j) or "")
    if direction is not None:
        status, value, _ = _amount(tokens, j + 1, "turn")
        return _finish(direction, status, value, cfg)
    # VERB around|back, then [to the] left|right or the end of the clause: a half turn. Anything
    # else after it ("turn around 30 degrees ...", "turn around the corner") is not a half turn.
    if _word(tokens, v + 1) in ("around", "back"):
        k = v + 2
        side = _TURN_DIRS.get(_word(tokens, _skip(tokens, k, _TO_THE)) or "")
        if side is not None:
            return _finish(side, _OK, 180.0, cfg)
        if k >= len(tokens) or tokens[k][0] == "punct" or _word(tokens, k) in _CLAUSE_ENDERS:
            return _finish("turn_left", _OK, 180.0, cfg)
    # VERB [fillers] AMOUNT [to the] left|right, or a 180 deg turn with no direction.
    status, value, j = _amount(tokens, v + 1, "turn")
    if status == _NONE:
        return _NO_MATCH
    direction = _TURN_DIRS.get(_word(tokens, _skip(tokens, j, _TO_THE)) or "")
    if direction is not None:
        return _finish(direction, status, value, cfg)
    if status == _OK and value == 180.0:
        return _finish("turn_left", status, value, cfg)
    return _NO_MATCH


def parse_action(text: str, cfg: ParserConfig | None = None) -> NavAction | None:
    """Read the action in a model's (or a person's) text; None if it holds no readable action.

    Accepts NaVILA's ten canonical outputs (`CANONICAL_OUTPUTS`) and the variations described in
    this module's docstring: any case and surrounding words, with or without "The next action
    is", units cm/centimetres/mm/m/metres and deg/degrees/°, decimals and English number words,
    "go forward", "walk ahead 1.5 meters", "rotate left by 30 degrees", "turn right 90°",
    "turn around" (180 deg left). Rules in short: a whole-word "stop" anywhere wins; otherwise
    the first motion phrase decides; a phrase without an amount gets the configured default;
    zero, negative, non-finite, ambiguous, wrongly-united or over-limit amounts make the text
    unparseable (over-limit ones are clamped instead with cfg.over_limit="clamp").

    Never raises for any `text` (non-str input returns None); raises TypeError only when `cfg`
    is neither None nor a ParserConfig. Returned motion amounts are finite and in (0, limit].
    """
    cfg = ParserConfig() if cfg is None else cfg
    if not isinstance(cfg, ParserConfig):
        raise TypeError(f"cfg must be a ParserConfig, got {type(cfg).__name__}")
    if not isinstance(text, str):
        return None
    # Plain-str slicing, so a str subclass's overrides cannot run (or raise) in here.
    text = str.__getitem__(text, slice(0, cfg.max_input_chars))
    if _STOP_RE.search(text):
        return NavAction("stop")
    tokens = _tokenize(text.lower())
    for v, (kind, word) in enumerate(tokens):
        if kind != "word" or (v > 0 and tokens[v - 1][1] in _NEGATIONS):
            continue
        if word in _FORWARD_VERBS:
            result = _match_forward(tokens, v, cfg)
        elif word in _TURN_VERBS:
            result = _match_turn(tokens, v, cfg)
        else:
            continue
        if result is not _NO_MATCH:
            return result  # type: ignore[return-value]  # NavAction or None
    return None


# ---------------------------------------------------------------------------------------------
# Primitives and sentences
# ---------------------------------------------------------------------------------------------


def _check_step(name: str, value: object) -> float:
    if not _is_real(value) or not math.isfinite(value) or value <= 0:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _check_count(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _step_count(ratio: float, max_primitives: int) -> int:
    """Primitives for amount/step = ratio (>= 0) under NaVILA's snapping rule, capped."""
    if ratio == 0.0:
        return 0
    if not math.isfinite(ratio):  # a finite amount over a tiny step: far beyond the cap
        return max_primitives
    nearest = round(ratio)
    if nearest >= 1 and abs(ratio - nearest) <= _MULTIPLE_TOL:
        n = nearest  # a multiple of the step passes through (100 cm -> 4 x 25 cm)
    else:
        # Otherwise snap to the nearest of 1, 2, 3 steps; ties go to the smaller (as NaVILA's
        # min(..., key=distance) does): 37.5 cm -> 25 cm, 60 cm -> 50 cm, 110 cm -> 75 cm.
        n = min(3, max(1, math.ceil(ratio - 0.5)))
    return min(n, max_primitives)


def to_primitives(action: NavAction, forward_step: float = FORWARD_STEP_M, turn_step: float = TURN_STEP_DEG,
                  max_primitives: int = MAX_PRIMITIVES) -> list[str]:
    """Expand an action into VLN-CE discrete primitives with NaVILA's snapping rule.

    forward_step (m) and turn_step (deg) are the simulator's primitive sizes (0.25 m, 15 deg).
    An amount that is a multiple of the step (within 1e-6 steps) gives that many primitives
    (1.0 m -> 4 x MOVE_FORWARD, 90 deg -> 6 x TURN_LEFT). Any other amount snaps to the nearest
    of 1, 2 or 3 steps, ties to the smaller (0.6 m -> 2, 20 deg -> 1, 1.1 m -> 3, 0.01 m -> 1).
    At most `max_primitives` (12) are returned; the excess is dropped, so the policy is asked
    again after 3 m or 180 deg. "stop" -> ["STOP"]; a zero-amount motion -> [].
    """
    if not isinstance(action, NavAction):
        raise TypeError(f"action must be a NavAction, got {type(action).__name__}")
    forward_step = _check_step("forward_step", forward_step)
    turn_step = _check_step("turn_step", turn_step)
    max_primitives = _check_count("max_primitives", max_primitives)
    if action.kind == "stop":
        return ["STOP"]
    step = forward_step if action.kind == "forward" else turn_step
    return [_KIND_TO_PRIMITIVE[action.kind]] * _step_count(action.amount / step, max_primitives)


def format_action(action: NavAction) -> str:
    """NaVILA's canonical sentence for an action (the form of its training labels).

    Forward amounts are written in whole centimetres and turns in whole degrees, rounded half
    up ("The next action is move forward 75 cm.", "The next action is turn left 30 degree.",
    singular "degree" as in the R2R labels); stop is `STOP_SENTENCE`. Sub-unit detail is lost
    by the rounding (0.123 m -> "12 cm").
    """
    if not isinstance(action, NavAction):
        raise TypeError(f"action must be a NavAction, got {type(action).__name__}")
    if action.kind == "stop":
        return STOP_SENTENCE
    units = action.amount * 100.0 if action.kind == "forward" else action.amount  # cm or deg
    if not math.isfinite(units):
        raise ValueError(f"{action} is too large to write in centimetres")
    if action.kind == "forward":
        return f"The next action is move forward {math.floor(units + 0.5)} cm."
    side = "left" if action.kind == "turn_left" else "right"
    return f"The next action is turn {side} {math.floor(units + 0.5)} degree."


def merge_primitives(primitives: Sequence[str], max_merge: int = 3, *, forward_step: float = FORWARD_STEP_M,
                     turn_step: float = TURN_STEP_DEG) -> list[NavAction]:
    """Merge runs of equal primitives into mid-level actions (for training labels).

    Consecutive equal motion primitives are cut into chunks of at most `max_merge` (3), each
    becoming one action: 3 x MOVE_FORWARD -> forward 0.75 m, 2 x TURN_LEFT -> turn_left 30 deg;
    a run of 7 forwards -> 0.75, 0.75, 0.25 m. Each "STOP" becomes one stop action. With
    max_merge <= the to_primitives cap, concatenating `to_primitives` of the result (same step
    sizes) gives back the input. Raises ValueError for anything not in `PRIMITIVES`.
    """
    if isinstance(primitives, str):
        raise TypeError("primitives must be a sequence of primitive names, not one string")
    max_merge = _check_count("max_merge", max_merge)
    forward_step = _check_step("forward_step", forward_step)
    turn_step = _check_step("turn_step", turn_step)
    actions: list[NavAction] = []
    run_kind: str | None = None
    run_len = 0

    def flush() -> None:
        if run_kind is not None and run_len > 0:
            step = forward_step if run_kind == "forward" else turn_step
            actions.append(NavAction(run_kind, run_len * step))

    for i, primitive in enumerate(primitives):
        kind = _PRIMITIVE_TO_KIND.get(primitive) if isinstance(primitive, str) else None
        if kind is None:
            raise ValueError(f"unknown primitive {primitive!r} at index {i}; expected one of {PRIMITIVES}")
        if kind == "stop":
            flush()
            run_kind, run_len = None, 0
            actions.append(NavAction("stop"))
        elif kind == run_kind and run_len < max_merge:
            run_len += 1
        else:
            flush()
            run_kind, run_len = kind, 1
    flush()
    return actions
