"""The reversal testbed: splits, the mix knob, the pretraining stream and the builtin specs."""

from collections import Counter
from itertools import islice

import pytest

from priorl.data import DatasetError, load_problems
from priorl.data.reversal import (
    BASE_RELIABILITY,
    LEARNABLE_LEVELS,
    SOLVED_LEVELS,
    UNSOLVED_LEVELS,
    Mix,
    in_test_split,
    parse_options,
    reversal_problems,
    stream_reversal,
)


def digits_of(problem):
    return problem.prompt.removeprefix("rev ").removesuffix("=")


def test_problems_are_reversals_with_a_deciding_first_digit():
    for p in reversal_problems("train")[:300] + reversal_problems("test")[:100]:
        s = digits_of(p)
        assert p.answer == s[::-1] and len(s) == p.level + 2 and set(s) <= set("123456789")
        assert s[0] != s[-1]  # the first answer token tells a reversal from a copy


def test_splits_are_disjoint_and_deterministic():
    mix = {"solved": 0.5, "unsolved": 0.5}  # the small levels, where collisions would show
    train = reversal_problems("train", **mix)
    test = reversal_problems("test", **mix)
    assert not {p.prompt for p in train} & {p.prompt for p in test}
    assert all(not in_test_split(digits_of(p)) for p in train) and all(in_test_split(digits_of(p)) for p in test)
    assert len({p.prompt for p in train}) == len(train)
    assert [p.prompt for p in reversal_problems("train", **mix)] == [p.prompt for p in train]
    assert [p.prompt for p in reversal_problems("train", seed=1)] != [p.prompt for p in reversal_problems("train")]
    assert [p.id for p in train] == list(range(len(train)))


@pytest.mark.parametrize("solved,unsolved", [(0.25, 0.25), (0.05, 0.05), (0.0, 0.6)])
def test_the_mix_sets_the_share_of_each_class(solved, unsolved):
    problems = reversal_problems("train", n=1000, solved=solved, unsolved=unsolved)
    counts = Counter(p.level for p in problems)
    assert len(problems) == 1000
    assert sum(counts[k] for k in SOLVED_LEVELS) == pytest.approx(1000 * solved, abs=1)
    assert sum(counts[k] for k in UNSOLVED_LEVELS) == pytest.approx(1000 * unsolved, abs=1)
    learnable = [counts[k] for k in LEARNABLE_LEVELS]
    assert max(learnable) - min(learnable) <= 1 and sum(learnable) == pytest.approx(
        1000 * (1 - solved - unsolved), abs=2
    )


def test_bad_mixes_and_options_are_named():
    with pytest.raises(ValueError, match="solved \\+ unsolved"):
        Mix(0.7, 0.6)
    with pytest.raises(ValueError, match="solved=-0.1"):
        Mix(-0.1, 0.0)
    with pytest.raises(ValueError, match="'k=1'"):
        parse_options("k=1")
    with pytest.raises(ValueError, match="'x'"):
        parse_options("solved=x")
    assert parse_options("n=10, solved=0.1,unsolved=0") == {"n": 10, "solved": 0.1, "unsolved": 0.0}
    with pytest.raises(ValueError, match="cannot supply"):
        reversal_problems("test", n=2000, solved=1.0, unsolved=0.0)  # 3-digit strings run out


def test_builtin_specs_take_the_options():
    problems = load_problems("builtin:reversal:n=40,solved=0.05,unsolved=0.05")
    assert len(problems) == 40 and problems[0].source.startswith("builtin:reversal:")
    assert len(load_problems("builtin:reversal-test")) == 500 and len(load_problems("builtin:reversal")) == 1500
    with pytest.raises(DatasetError, match="builtin:reversal:solved=2: reversal mix"):
        load_problems("builtin:reversal:solved=2")
    with pytest.raises(DatasetError, match="takes no options"):
        load_problems("builtin:arithmetic:n=3")


def test_stream_slips_at_the_recipe_rate_and_never_shows_a_test_string():
    pairs = list(islice(stream_reversal(0), 16000))
    by_level: dict[int, list[bool]] = {}
    for prompt, target in pairs:
        s = prompt.removeprefix("rev ").removesuffix("=")
        assert not in_test_split(s)
        assert target in (s, s[::-1])
        by_level.setdefault(len(s) - 2, []).append(target == s[::-1])
    for level, hits in by_level.items():
        assert sum(hits) / len(hits) == pytest.approx(BASE_RELIABILITY[level], abs=0.05)
    assert [p for p, _ in islice(stream_reversal(0), 50)] == [p for p, _ in pairs[:50]]
