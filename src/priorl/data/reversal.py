"""The testbed task family: reverse a string of digits, with a knob for the difficulty mix.

``builtin:reversal`` (train) and ``builtin:reversal-test`` (held out) are the problems of priorl's study
(``configs/study.yaml``), built so that the properties of real RLVR training hold on a laptop CPU:

- **The model often knows the answer and does not yet say it reliably.** The shipped base model
  ``builtin:tiny-reversal`` was pretrained (:func:`stream_reversal`) on targets that are the reversed
  string with a length-dependent probability ``q`` and otherwise the string copied unchanged, a
  systematic slip. Every problem's first and last digits differ, so the first answer token decides
  between the two: the model samples the right answer at a rate close to ``q`` of its length, and greedy
  decoding gives it only where ``q > 0.5``. Sampling often finds the answer (pass@8 far above pass@1),
  which is what RL turns into pass@1.
- **A realistic difficulty mix.** Short strings are *solved* (``q = 1``), long ones *unsolved*
  (``q = 0``: the model only ever copies them), and the lengths between are *learnable* with ``q`` from
  0.6 down to 0.1. The mix knob sets the share of solved and unsolved problems; the rest is spread evenly
  over the learnable lengths. The default (25% solved, 25% unsolved) makes about 60% of uniform GRPO's
  first groups zero-variance, within the 50-65% reported for math RL datasets.
- **A skill, not a list.** Reversal is one algorithm and the slip depends on the length alone, so what RL
  teaches on training strings of a length carries over to unseen strings of that length: the held-out
  split measures learning, not memorisation.

Levels are lengths: level ``k`` holds strings of ``k + 2`` digits (levels 1-8, lengths 3-10). Digits are
1-9, so no answer has a leading zero. A problem is ``"rev 48317="`` with answer ``"71384"``; grade it with
the ``exact`` verifier.

Train/test disjointness is by construction: the SHA-256 of the string puts it on one side of the split
once and for all, the test set draws only from the test side, and everything trained on (training
problems and the pretraining stream) only from the train side.

Options of the builtin spec, e.g. ``builtin:reversal:solved=0.05,unsolved=0.05,n=1500``:
``n`` (problems; default 1500 train, 500 test), ``solved``, ``unsolved`` (shares in [0, 1], sum <= 1) and
``seed`` (which problems are drawn). The test split takes the same mix options, so held-out problems
follow the training distribution: give both specs the same ``solved`` and ``unsolved``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

from priorl.types import Problem

__all__ = [
    "BASE_RELIABILITY",
    "LEVELS",
    "Mix",
    "SOLVED_LEVELS",
    "UNSOLVED_LEVELS",
    "LEARNABLE_LEVELS",
    "parse_options",
    "reversal_problems",
    "stream_reversal",
]

LEVELS = (1, 2, 3, 4, 5, 6, 7, 8)  # level k: strings of k + 2 digits
# Share of pretraining targets that are the reversed string, by level (the rest are copies): the base
# model's reliability. Solved, learnable from easy to hard, unsolved.
BASE_RELIABILITY = {1: 1.0, 2: 1.0, 3: 0.6, 4: 0.35, 5: 0.2, 6: 0.1, 7: 0.0, 8: 0.0}
SOLVED_LEVELS = tuple(k for k, q in BASE_RELIABILITY.items() if q == 1.0)
UNSOLVED_LEVELS = tuple(k for k, q in BASE_RELIABILITY.items() if q == 0.0)
LEARNABLE_LEVELS = tuple(k for k, q in BASE_RELIABILITY.items() if 0.0 < q < 1.0)

DEFAULT_TRAIN, DEFAULT_TEST = 1500, 500
_TEST_PERMILLE = 200  # share of every length's strings on the test side (3 digits: about 130 of 648)
_MAX_DRAWS = 1_000_000


def length_of(level: int) -> int:
    """Digits in a string of ``level``."""
    return level + 2


@dataclass(frozen=True)
class Mix:
    """The difficulty mix: shares of solved and unsolved problems; the rest is learnable."""

    solved: float = 0.25
    unsolved: float = 0.25

    def __post_init__(self) -> None:
        for name in ("solved", "unsolved"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"reversal mix: {name}={value} must be in [0, 1]")
        if self.solved + self.unsolved > 1.0 + 1e-9:
            raise ValueError(f"reversal mix: solved + unsolved = {self.solved + self.unsolved:g} must be <= 1")

    def level_shares(self) -> dict[int, float]:
        """Share of problems at each level: each class's share spread evenly over its levels."""
        learnable = 1.0 - self.solved - self.unsolved
        shares = {}
        for levels, share in (
            (SOLVED_LEVELS, self.solved),
            (LEARNABLE_LEVELS, learnable),
            (UNSOLVED_LEVELS, self.unsolved),
        ):
            for k in levels:
                shares[k] = share / len(levels)
        return dict(sorted(shares.items()))


def parse_options(text: str) -> dict:
    """``"solved=0.05,unsolved=0.05,n=1500"`` -> ``{"solved": 0.05, "unsolved": 0.05, "n": 1500}``.

    Raises ValueError naming an unknown option or a value that is not a number.
    """
    out: dict = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or key not in ("n", "solved", "unsolved", "seed"):
            raise ValueError(f"reversal option {part!r}: expected one of n=, solved=, unsolved=, seed=")
        try:
            out[key] = int(raw) if key in ("n", "seed") else float(raw)
        except ValueError:
            raise ValueError(f"reversal option {part!r}: {raw!r} is not a number") from None
    return out


def in_test_split(digits: str) -> bool:
    """True when the string belongs to the held-out side. O(1), pure."""
    digest = hashlib.sha256(f"reversal/{digits}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 1000 < _TEST_PERMILLE


def prompt_of(digits: str) -> str:
    """The prompt the model sees, e.g. ``"rev 48317="``."""
    return f"rev {digits}="


def _draw(rng: random.Random, level: int) -> str:
    """A string of the level's length, digits 1-9, first and last digits different."""
    n = length_of(level)
    while True:
        s = "".join(chr(49 + int(rng.random() * 9)) for _ in range(n))
        if s[0] != s[-1]:
            return s


def _counts(n: int, shares: dict[int, float]) -> dict[int, int]:
    """Integer counts per level summing to ``n`` (largest remainder, ties to the lower level)."""
    raw = {k: n * s for k, s in shares.items()}
    counts = {k: int(v) for k, v in raw.items()}
    left = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - counts[k]), k))[:left]:
        counts[k] += 1
    return counts


def reversal_problems(
    split: str = "train",
    *,
    n: int | None = None,
    solved: float = 0.25,
    unsolved: float = 0.25,
    seed: int = 0,
) -> list[Problem]:
    """The reversal problems of one split with the given mix; ``Problem.id`` is the index in the list.

    Distinct strings, drawn from the split's side only, in a seeded shuffled order (so any prefix has
    about the mix). ``source`` is ``"builtin:reversal[-test]:<index>"``. Deterministic in the arguments.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    n = (DEFAULT_TRAIN if split == "train" else DEFAULT_TEST) if n is None else n
    if n < 1:
        raise ValueError(f"reversal option n={n} must be >= 1")
    counts = _counts(n, Mix(solved, unsolved).level_shares())
    want_test = split == "test"
    items: list[tuple[str, int]] = []
    for level, count in counts.items():
        rng = random.Random(f"priorl-reversal/{seed}/{split}/{level}")
        seen: set[str] = set()
        misses = 0
        while len(seen) < count:
            s = _draw(rng, level)
            if s in seen or in_test_split(s) != want_test:
                misses += 1
                if misses > _MAX_DRAWS:
                    raise ValueError(
                        f"reversal: level {level} ({length_of(level)} digits) cannot supply {count} distinct "
                        f"{split} problems; lower n or this level's share"
                    )
                continue
            misses = 0
            seen.add(s)
            items.append((s, level))
    random.Random(f"priorl-reversal-order/{seed}/{split}").shuffle(items)
    name = "builtin:reversal" if split == "train" else "builtin:reversal-test"
    return [Problem(i, prompt_of(s), s[::-1], level, f"{name}:{i}") for i, (s, level) in enumerate(items)]


def stream_reversal(seed: int, reliability: dict[int, float] | None = None) -> Iterator[tuple[str, str]]:
    """Endless pretraining pairs ``(prompt, target)`` from the train side, levels drawn uniformly.

    The target is the reversed string with probability ``reliability[level]`` (default
    :data:`BASE_RELIABILITY`), else the string copied: the slip the base model learns. Deterministic in
    ``seed``; never yields a test-side string.
    """
    reliability = BASE_RELIABILITY if reliability is None else reliability
    rng = random.Random(f"priorl-reversal-stream/{seed}")
    levels = tuple(sorted(reliability))
    while True:
        level = levels[int(rng.random() * len(levels))]
        s = _draw(rng, level)
        if in_test_split(s):
            continue
        yield prompt_of(s), (s[::-1] if rng.random() < reliability[level] else s)
