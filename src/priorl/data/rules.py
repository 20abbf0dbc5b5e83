"""The study's testbed: apply a tagged rule to a string of digits, with a knob for the difficulty mix.

``builtin:rules`` (train) and ``builtin:rules-test`` (held out) are the problems of priorl's study
(``configs/study.yaml``), built so that the properties of real RLVR training hold on a laptop CPU. A
problem is ``"48317:k"``: digits, then a *tag* letter. Each of the 48 tags names one of four rules that
rearrange the digits; the answer is the rule's marker letter followed by the rule applied to the string:

=========  ======  ==========================
rule       marker  answer for ``48317``
=========  ======  ==========================
copy       ``W``   ``W48317``
rotate-1   ``X``   ``X83174`` (first moved last)
rotate-2   ``Y``   ``Y31748``
reverse    ``Z``   ``Z71384``
=========  ======  ==========================

The marker makes the rule a decision of its own, the first answer token (the markers are letters no tag
uses), and the tag comes last in the prompt, so that this decision is read off the tag's own position.
Both are there so that RL learns tag by tag; the two earlier drafts that lacked them did not (RL taught
training strings rather than the tag's rule, or moved every tag toward the same average; see
benchmarks/RESULTS.md, "How the testbed was built").

What makes it a testbed with headroom, and a realistic one:

- **The model often knows the answer and does not yet say it reliably.** The shipped base model
  ``builtin:tiny-rules`` was pretrained (:func:`stream_rules`) on targets that use the tag's rule with a
  tag-specific probability ``q`` and one of the three other rules otherwise (diverse slips, each with
  probability ``(1 - q) / 3``). It samples the right answer at a rate close to ``q`` and, for the
  learnable tags (``q`` <= 0.22), greedy decoding picks a slip: pass@8 is far above pass@1, which is what
  RL turns into pass@1.
- **A realistic difficulty mix.** Tags come in six levels: level 1 is *solved* (``q = 1``), level 6
  *unsolved* (``q = 0``: the model never saw the tag's own rule used, so sampling does not find it), and
  levels 2-5 are *learnable* with ``q`` = 0.22, 0.15, 0.10 and 0.06. The mix knob sets the share of solved
  and unsolved problems; the rest is spread evenly over the learnable levels. The default (25% solved, 25%
  unsolved) makes about two thirds of uniform GRPO's first groups zero-variance, near the 50-65% reported
  for math RL datasets; ``solved=0.05,unsolved=0.05`` is the low-waste mix.
- **Many skills, learned one by one.** Each tag is its own skill: what RL teaches on a tag's training
  strings mostly carries over to that tag's unseen strings, so the held-out split measures learning (not
  all of it: drawing the same few strings many times teaches them more than the tag's rule, measured in
  benchmarks/RESULTS.md), and little to other tags, since every rule is right for some tags and a slip
  for others. So which problems get the generation budget decides which skills improve.
- **Unsolved is not forever.** Level-6 tags start at pass@8 = 0, but once RL moves the model's rule
  choices they begin to be sampled right and become learnable, as out-of-reach problems do in real
  training; a sampler that never looks at them again misses that.

Levels 1-6 are the ``level`` of every problem (8 tags each, two per rule). Digits are 1-9 and strings have
4-7 of them, so answers are 5-8 tokens long (9 with the end token). Grade with the ``exact`` verifier.

Train/test disjointness is by construction: the SHA-256 of tag and string puts a problem on one side of
the split once and for all; the test set draws only from the test side, and everything trained on
(training problems and the pretraining stream) only from the train side. The validation set
(``builtin:rules-validation``, used to tune a comparison's settings) also draws from the held-out side,
with its own random stream, and skips every problem of the test set of the same mix and seed.

Options of the builtin spec, e.g. ``builtin:rules:solved=0.05,unsolved=0.05,n=1500``: ``n`` (problems;
default 1500 train, 500 test), ``solved``, ``unsolved`` (shares in [0, 1], sum <= 1) and ``seed`` (which
problems are drawn). Give the test spec the same ``solved`` and ``unsolved`` so that held-out problems
follow the training distribution.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from priorl.types import Problem

__all__ = [
    "LEVELS",
    "LEVEL_RELIABILITY",
    "MARKERS",
    "RULES",
    "TAGS",
    "Mix",
    "apply_rule",
    "parse_options",
    "rules_problems",
    "stream_rules",
    "tag_table",
]

MARKERS: dict[str, str] = {"copy": "W", "rotate-1": "X", "rotate-2": "Y", "reverse": "Z"}
RULES: dict[str, Callable[[str], str]] = {
    "copy": lambda s: s,
    "rotate-1": lambda s: s[1:] + s[:1],
    "rotate-2": lambda s: s[2:] + s[:2],
    "reverse": lambda s: s[::-1],
}
TAGS = tuple(chr(c) for c in range(ord("a"), ord("z") + 1)) + tuple(chr(c) for c in range(ord("A"), ord("V") + 1))
LEVELS = (1, 2, 3, 4, 5, 6)
# Probability that a pretraining target uses the tag's own rule, by level: the base model's reliability.
LEVEL_RELIABILITY = {1: 1.0, 2: 0.22, 3: 0.15, 4: 0.10, 5: 0.06, 6: 0.0}
SOLVED_LEVELS, LEARNABLE_LEVELS, UNSOLVED_LEVELS = (1,), (2, 3, 4, 5), (6,)
MIN_DIGITS, MAX_DIGITS = 4, 7

DEFAULT_TRAIN, DEFAULT_TEST = 1500, 500
_TEST_PERMILLE = 200
_TABLE_SEED = "priorl-rules-table/0"  # fixed: the shipped model learned this table


def tag_table() -> dict[str, tuple[int, str]]:
    """Each tag's ``(level, rule)``: 8 tags per level, two per rule, assigned once from a fixed seed."""
    rng = random.Random(_TABLE_SEED)
    tags = list(TAGS)
    rng.shuffle(tags)
    rules = list(RULES)
    table = {}
    for i, tag in enumerate(tags):
        level = LEVELS[i // 8]
        table[tag] = (level, rules[i % 4])
    return dict(sorted(table.items()))


_TABLE = tag_table()


def apply_rule(rule: str, digits: str) -> str:
    """The answer of ``rule`` on ``digits``: its marker, then the rearranged digits (``X83174``)."""
    return MARKERS[rule] + RULES[rule](digits)


@dataclass(frozen=True)
class Mix:
    """The difficulty mix: shares of solved and unsolved problems; the rest is learnable."""

    solved: float = 0.25
    unsolved: float = 0.25

    def __post_init__(self) -> None:
        for name in ("solved", "unsolved"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"rules mix: {name}={value} must be in [0, 1]")
        if self.solved + self.unsolved > 1.0 + 1e-9:
            raise ValueError(f"rules mix: solved + unsolved = {self.solved + self.unsolved:g} must be <= 1")

    def level_shares(self) -> dict[int, float]:
        """Share of problems at each level: each class's share spread evenly over its levels."""
        learnable = 1.0 - self.solved - self.unsolved
        shares: dict[int, float] = {}
        classes = ((SOLVED_LEVELS, self.solved), (LEARNABLE_LEVELS, learnable), (UNSOLVED_LEVELS, self.unsolved))
        for levels, share in classes:
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
            raise ValueError(f"rules option {part!r}: expected one of n=, solved=, unsolved=, seed=")
        try:
            out[key] = int(raw) if key in ("n", "seed") else float(raw)
        except ValueError:
            raise ValueError(f"rules option {part!r}: {raw!r} is not a number") from None
    return out


def in_test_split(tag: str, digits: str) -> bool:
    """True when the problem belongs to the held-out side. O(1), pure."""
    digest = hashlib.sha256(f"rules/{tag}/{digits}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 1000 < _TEST_PERMILLE


def prompt_of(tag: str, digits: str) -> str:
    """The prompt the model sees, e.g. ``"48317:k"`` (the answer follows it directly)."""
    return f"{digits}:{tag}"


def _digits(rng: random.Random) -> str:
    """4-7 distinct digits from 1-9."""
    n = MIN_DIGITS + int(rng.random() * (MAX_DIGITS - MIN_DIGITS + 1))
    pool = list("123456789")
    return "".join(pool.pop(int(rng.random() * len(pool))) for _ in range(n))


def _counts(n: int, shares: dict[int, float]) -> dict[int, int]:
    """Integer counts per level summing to ``n`` (largest remainder, ties to the lower level)."""
    raw = {k: n * s for k, s in shares.items()}
    counts = {k: int(v) for k, v in raw.items()}
    left = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - counts[k]), k))[:left]:
        counts[k] += 1
    return counts


def rules_problems(
    split: str = "train",
    *,
    n: int | None = None,
    solved: float = 0.25,
    unsolved: float = 0.25,
    seed: int = 0,
) -> list[Problem]:
    """The problems of one split with the given mix; ``Problem.id`` is the index in the list.

    Per level, tags are drawn uniformly among the level's 8, strings uniformly; problems are distinct,
    from the split's side only, in a seeded shuffled order. ``source`` is ``"builtin:rules[-test]:<i>"``.
    Deterministic in the arguments.
    """
    if split not in ("train", "test", "validation"):
        raise ValueError(f"split must be 'train', 'test' or 'validation', got {split!r}")
    n = (DEFAULT_TRAIN if split == "train" else DEFAULT_TEST) if n is None else n
    if n < 1:
        raise ValueError(f"rules option n={n} must be >= 1")
    counts = _counts(n, Mix(solved, unsolved).level_shares())
    want_test = split != "train"  # validation draws from the held-out side too: never pretrained or trained on
    # The validation split skips the problems of the test split of the same mix and seed (default size), so the
    # two held-out sets never share a problem; priorl.data.prepare also drops any overlap with the run's own test set.
    taken = set() if split != "validation" else {
        (p.prompt.rpartition(":")[2], p.prompt.rpartition(":")[0])
        for p in rules_problems("test", solved=solved, unsolved=unsolved, seed=seed)
    }  # fmt: skip
    items: list[tuple[str, str, int]] = []
    for level, count in counts.items():
        tags = [t for t, (lv, _) in _TABLE.items() if lv == level]
        rng = random.Random(f"priorl-rules/{seed}/{split}/{level}")
        seen: set[tuple[str, str]] = set()
        while len(seen) < count:
            tag, digits = tags[int(rng.random() * len(tags))], _digits(rng)
            if (tag, digits) in seen or (tag, digits) in taken or in_test_split(tag, digits) != want_test:
                continue  # the space per tag is > 3,000 strings: this loop always ends
            seen.add((tag, digits))
            items.append((tag, digits, level))
    random.Random(f"priorl-rules-order/{seed}/{split}").shuffle(items)
    name = {"train": "builtin:rules", "test": "builtin:rules-test", "validation": "builtin:rules-validation"}[split]
    return [
        Problem(i, prompt_of(tag, digits), apply_rule(_TABLE[tag][1], digits), level, f"{name}:{i}")
        for i, (tag, digits, level) in enumerate(items)
    ]


def stream_rules(seed: int, reliability: dict[int, float] | None = None) -> Iterator[tuple[str, str]]:
    """Endless pretraining pairs ``(prompt, target)`` from the train side, tags drawn uniformly.

    The target applies the tag's own rule with probability ``reliability[level]`` (default
    :data:`LEVEL_RELIABILITY`) and otherwise one of the three other rules, chosen uniformly: the slips the
    base model learns. Deterministic in ``seed``; never yields a test-side problem.
    """
    reliability = LEVEL_RELIABILITY if reliability is None else {int(k): float(v) for k, v in reliability.items()}
    rng = random.Random(f"priorl-rules-stream/{seed}")
    rules = list(RULES)
    while True:
        tag = TAGS[int(rng.random() * len(TAGS))]
        digits = _digits(rng)
        if in_test_split(tag, digits):
            continue
        level, rule = _TABLE[tag]
        if rng.random() >= reliability[level]:
            others = [r for r in rules if r != rule]
            rule = others[int(rng.random() * 3)]
        yield prompt_of(tag, digits), apply_rule(rule, digits)
