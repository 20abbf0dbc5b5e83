"""The builtin task family: procedurally generated integer arithmetic at five difficulty levels.

``builtin:arithmetic`` (train) and ``builtin:arithmetic-test`` (held out) are generated from a fixed
seed, so every install sees the same problems. Prompts are character-level friendly, ``"12+34="``, and
the answer is the exact integer result as a decimal string, ``"46"``; the completion a model should
produce is the answer followed by its end-of-sequence token.

Levels (chosen so that a tiny character model learns the low ones quickly and the top one barely):

=====  =======================================================  ================  =============
level  problems                                                 example           size of space
=====  =======================================================  ================  =============
1      2-digit + 2-digit, no carry in any column                ``23+41=`` 64     1,980
2      2-digit + 2-digit, at least one carry                    ``58+67=`` 125    6,120
3      2-digit - 2-digit, non-negative result (borrows or not)  ``72-38=`` 34     4,095
4      3-digit + 3-digit or 3-digit - 3-digit (non-negative)    ``418+375=`` 793  ~1.2 million
5      2-digit * 1-digit (2..9), either operand order           ``47*6=`` 282     1,440
=====  =======================================================  ================  =============

The order is the order of the shipped tiny model's measured held-out accuracy (greedy: about 90, 70,
30, 25 and 12%). Multiplication stays low for a tiny model because its train side is small (about 1,200
expressions) and memorising it does not carry over to the held-out products.

``builtin:arithmetic-instruct`` and ``builtin:arithmetic-instruct-test`` are the same problems (same ids,
answers and levels) written for chat models: ``"Compute 12 + 34. Reply with just the number."``. Of the
phrasings tried on SmolLM2-135M-Instruct (``"12 + 34 ="``, ``"What is 12 + 34? Answer with a number."``, this
one), this one drew the most direct answers ("12 + 34 = 46") and the highest greedy accuracy (14% on the
first 50 test problems, against 0% and 6%).

Train/test disjointness is by construction, not by checking two lists: every expression has a
*canonical key* (operands of ``+`` and ``*`` sorted, so ``34+12`` and ``12+34`` share one) and the key's
SHA-256 decides, once and for all, which side of the split it lives on. The test set draws only from
the test side and everything trained on (the train set and the pretraining stream) only from the train
side, so no test expression, nor its commuted twin, is ever seen in training.

Random draws use only ``random.Random.random()`` seeded with a string: the one part of Python's
``random`` module whose output the documentation promises to keep across Python versions.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from priorl.types import Problem

__all__ = [
    "DEFAULT_SEED",
    "LEVELS",
    "TEST_PER_LEVEL",
    "TRAIN_PER_LEVEL",
    "ArithmeticItem",
    "arithmetic_problems",
    "canonical_key",
    "evaluate_expression",
    "in_test_split",
    "stream_arithmetic",
]

DEFAULT_SEED = 0
TRAIN_PER_LEVEL = 800  # 4,000 training problems
TEST_PER_LEVEL = 100  # 500 held-out problems
VALIDATION_PER_LEVEL = 50  # 250 validation problems (held-out side, none of the test set's)
LEVELS = (1, 2, 3, 4, 5)

# Share of each level's expression space reserved for the test side (by hash of the canonical key).
# 15% keeps the smallest level (5: 1,440 expressions) able to supply 100 test and 800 train problems.
_TEST_PERMILLE = 150

# A rejection loop that has not found a new expression after this many draws means the requested size
# cannot be met (a programming error in the sizes above, not a user error).
_MAX_DRAWS = 1_000_000


@dataclass(frozen=True, slots=True)
class ArithmeticItem:
    """One generated expression: ``a op b`` with its exact result and level."""

    a: int
    op: str  # "+", "-" or "*"
    b: int
    level: int

    @property
    def prompt(self) -> str:
        """The prompt the model sees, e.g. ``"12+34="``."""
        return f"{self.a}{self.op}{self.b}="

    @property
    def instruction(self) -> str:
        """The prompt for chat models, e.g. ``"Compute 12 + 34. Reply with just the number."``."""
        return f"Compute {self.a} {self.op} {self.b}. Reply with just the number."

    @property
    def answer(self) -> str:
        """The exact integer result as a decimal string, e.g. ``"46"``."""
        return str(evaluate_expression(self.a, self.op, self.b))


def evaluate_expression(a: int, op: str, b: int) -> int:
    """Exact integer value of ``a op b`` for ``op`` in ``+ - *``."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    raise ValueError(f"unknown operator {op!r}")


def canonical_key(a: int, op: str, b: int) -> str:
    """The key that decides the split: commutative operands sorted, so ``a+b`` and ``b+a`` agree."""
    if op in "+*" and b < a:
        a, b = b, a
    return f"{a}{op}{b}"


def in_test_split(a: int, op: str, b: int) -> bool:
    """True when the expression belongs to the held-out side of the split. O(1), pure."""
    digest = hashlib.sha256(canonical_key(a, op, b).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 1000 < _TEST_PERMILLE


# ---- one sampler per level: each draws an expression from its level's space (not always uniformly) ----


def _randint(rng: random.Random, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] from ``rng.random()`` only (version-stable, see module docstring)."""
    return lo + int(rng.random() * (hi - lo + 1))


def _level1(rng: random.Random) -> tuple[int, str, int]:
    # Draw column digits directly so that no column carries: tens >= 1 keeps both operands 2-digit.
    a_tens = _randint(rng, 1, 8)
    b_tens = _randint(rng, 1, 9 - a_tens)
    a_ones = _randint(rng, 0, 9)
    b_ones = _randint(rng, 0, 9 - a_ones)
    return 10 * a_tens + a_ones, "+", 10 * b_tens + b_ones


def _level2(rng: random.Random) -> tuple[int, str, int]:
    while True:
        a, b = _randint(rng, 10, 99), _randint(rng, 10, 99)
        if a % 10 + b % 10 >= 10 or a // 10 + b // 10 >= 10:
            return a, "+", b


def _level3(rng: random.Random) -> tuple[int, str, int]:
    a, b = _randint(rng, 10, 99), _randint(rng, 10, 99)
    return max(a, b), "-", min(a, b)


def _level4(rng: random.Random) -> tuple[int, str, int]:
    a, b = _randint(rng, 100, 999), _randint(rng, 100, 999)
    if rng.random() < 0.5:
        return a, "+", b
    return max(a, b), "-", min(a, b)


def _level5(rng: random.Random) -> tuple[int, str, int]:
    a, b = _randint(rng, 10, 99), _randint(rng, 2, 9)
    return (a, "*", b) if rng.random() < 0.5 else (b, "*", a)


_SAMPLERS: dict[int, Callable[[random.Random], tuple[int, str, int]]] = {
    1: _level1,
    2: _level2,
    3: _level3,
    4: _level4,
    5: _level5,
}


def _draw_unique(level: int, split: str, count: int, seed: int, taken: frozenset = frozenset()) -> list[ArithmeticItem]:
    """``count`` distinct expressions of one level from one side of the split (not in ``taken``), in draw order."""
    rng = random.Random(f"priorl-arithmetic/{seed}/{split}/{level}")
    want_test = split != "train"
    seen: set[tuple[int, str, int]] = set()
    items: list[ArithmeticItem] = []
    draws_since_new = 0
    while len(items) < count:
        expr = _SAMPLERS[level](rng)
        draws_since_new += 1
        if draws_since_new > _MAX_DRAWS:
            raise RuntimeError(f"level {level} cannot supply {count} distinct {split} problems")
        if expr in seen or canonical_key(*expr) in taken or in_test_split(*expr) != want_test:
            continue
        seen.add(expr)
        items.append(ArithmeticItem(expr[0], expr[1], expr[2], level))
        draws_since_new = 0
    return items


def arithmetic_problems(
    split: str = "train",
    *,
    per_level: int | None = None,
    seed: int = DEFAULT_SEED,
    levels: tuple[int, ...] = LEVELS,
    style: str = "expression",
) -> list[Problem]:
    """The builtin arithmetic problems of one split, ``"train"`` or ``"test"``.

    ``style``: ``"expression"`` prompts (``"12+34="``) or ``"instruct"`` prompts for chat models
    (``"Compute 12 + 34. Reply with just the number."``); the problems are otherwise identical.

    ``per_level`` defaults to 800 (train) or 100 (test). Problems are distinct within the split, and
    the two splits are disjoint (see the module docstring). Levels are interleaved round-robin
    (1, 2, 3, 4, 5, 1, 2, ...) so any prefix of the list is balanced; ``Problem.id`` is the index in
    the list and ``source`` is ``"builtin:arithmetic[-test]:<index>"``. Deterministic in ``seed``.
    """
    if split not in ("train", "test", "validation"):
        raise ValueError(f"split must be 'train', 'test' or 'validation', got {split!r}")
    unknown = [lv for lv in levels if lv not in _SAMPLERS]
    if unknown:
        raise ValueError(f"unknown arithmetic levels {unknown}; known: {list(LEVELS)}")
    if per_level is None:
        per_level = {"train": TRAIN_PER_LEVEL, "test": TEST_PER_LEVEL, "validation": VALIDATION_PER_LEVEL}[split]
    if style not in ("expression", "instruct"):
        raise ValueError(f"style must be 'expression' or 'instruct', got {style!r}")
    name = (
        "builtin:arithmetic"
        + ("-instruct" if style == "instruct" else "")
        + {"train": "", "test": "-test", "validation": "-validation"}[split]
    )
    # validation: the held-out side too, skipping the default test set's expressions (the two never overlap)
    taken = {lv: frozenset() for lv in levels}
    if split == "validation":
        for lv in levels:
            taken[lv] = frozenset(canonical_key(i.a, i.op, i.b) for i in _draw_unique(lv, "test", TEST_PER_LEVEL, seed))
    per = [_draw_unique(level, split, per_level, seed, taken[level]) for level in levels]
    problems: list[Problem] = []
    for i in range(per_level):
        for items in per:
            item = items[i]
            idx = len(problems)
            prompt = item.instruction if style == "instruct" else item.prompt
            problems.append(Problem(idx, prompt, item.answer, item.level, f"{name}:{idx}"))
    return problems


def stream_arithmetic(
    seed: int, *, levels: tuple[int, ...] = LEVELS, weights: tuple[float, ...] | None = None
) -> Iterator[ArithmeticItem]:
    """An endless stream of train-side expressions (repeats allowed), used for supervised pretraining.

    Each item's level is drawn with ``weights`` (uniform by default), then an expression from that
    level's train side. Never yields a test-side expression. Deterministic in ``seed``.
    """
    if weights is None:
        weights = tuple(1.0 for _ in levels)
    if len(weights) != len(levels) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights {weights} must be non-negative, not all zero, one per level {levels}")
    total = sum(weights)
    cumulative = []
    acc = 0.0
    for w in weights:
        acc += w / total
        cumulative.append(acc)
    rng = random.Random(f"priorl-arithmetic-stream/{seed}")
    while True:
        u = rng.random()
        k = next((i for i, c in enumerate(cumulative) if u < c), len(levels) - 1)
        level = levels[k]
        expr = _SAMPLERS[level](rng)
        if in_test_split(*expr):
            continue
        yield ArithmeticItem(expr[0], expr[1], expr[2], level)
