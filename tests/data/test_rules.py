"""The rules testbed: the tag table, splits, the mix knob, the pretraining stream and the builtin specs."""

from collections import Counter
from itertools import islice

import pytest

from priorl.data import DatasetError, load_problems
from priorl.data.rules import (
    LEARNABLE_LEVELS,
    LEVEL_RELIABILITY,
    RULES,
    SOLVED_LEVELS,
    UNSOLVED_LEVELS,
    Mix,
    apply_rule,
    in_test_split,
    parse_options,
    rules_problems,
    stream_rules,
    tag_table,
)


def parts(prompt):
    digits, tag = prompt.split(":")
    return tag, digits


def test_every_level_has_eight_tags_two_per_rule():
    table = tag_table()
    assert len(table) == 48
    assert Counter(table.values()) == {(level, rule): 2 for level in range(1, 7) for rule in RULES}
    assert tag_table() == table  # fixed once and for all: the shipped model learned it


def test_rules_and_their_first_digits():
    assert [apply_rule(r, "48317") for r in RULES] == ["W48317", "X83174", "Y31748", "Z71384"]
    # Distinct digits: the four rules start with four different digits.
    assert len({apply_rule(r, "4831")[0] for r in RULES}) == 4


def test_problems_apply_their_tags_rule():
    table = tag_table()
    for p in rules_problems("train")[:300] + rules_problems("test")[:100]:
        tag, digits = parts(p.prompt)
        level, rule = table[tag]
        assert p.level == level and p.answer == apply_rule(rule, digits)
        assert 4 <= len(digits) <= 7 and len(set(digits)) == len(digits) and "0" not in digits


def test_splits_are_disjoint_and_deterministic():
    train, test = rules_problems("train"), rules_problems("test")
    assert not {p.prompt for p in train} & {p.prompt for p in test}
    assert all(not in_test_split(*parts(p.prompt)) for p in train) and all(
        in_test_split(*parts(p.prompt)) for p in test
    )
    assert len({p.prompt for p in train}) == len(train) and [p.id for p in train] == list(range(len(train)))
    assert [p.prompt for p in rules_problems("train")] == [p.prompt for p in train]
    assert [p.prompt for p in rules_problems("train", seed=1)] != [p.prompt for p in train]


@pytest.mark.parametrize("solved,unsolved", [(0.25, 0.25), (0.05, 0.05), (0.0, 0.6)])
def test_the_mix_sets_the_share_of_each_class(solved, unsolved):
    problems = rules_problems("train", n=1000, solved=solved, unsolved=unsolved)
    counts = Counter(p.level for p in problems)
    assert len(problems) == 1000
    assert sum(counts[k] for k in SOLVED_LEVELS) == pytest.approx(1000 * solved, abs=1)
    assert sum(counts[k] for k in UNSOLVED_LEVELS) == pytest.approx(1000 * unsolved, abs=1)
    learnable = [counts[k] for k in LEARNABLE_LEVELS]
    assert max(learnable) - min(learnable) <= 1


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


def test_builtin_specs_take_the_options():
    problems = load_problems("builtin:rules:n=40,solved=0.05,unsolved=0.05")
    assert len(problems) == 40 and problems[0].source.startswith("builtin:rules:")
    assert len(load_problems("builtin:rules-test")) == 500 and len(load_problems("builtin:rules")) == 1500
    with pytest.raises(DatasetError, match="builtin:rules:solved=2: rules mix"):
        load_problems("builtin:rules:solved=2")
    with pytest.raises(DatasetError, match="takes one option, n=N"):
        load_problems("builtin:arithmetic:solved=0.1")  # arithmetic takes only n= (tests/data/test_arithmetic.py)


def test_stream_uses_the_tags_rule_at_the_recipe_rate_and_never_shows_a_test_problem():
    table = tag_table()
    hits: dict[int, list[bool]] = {}
    slips: Counter = Counter()
    pairs = list(islice(stream_rules(0), 24000))
    for prompt, target in pairs:
        tag, digits = parts(prompt)
        assert not in_test_split(tag, digits)
        level, rule = table[tag]
        used = [r for r in RULES if apply_rule(r, digits) == target]
        assert len(used) == 1
        hits.setdefault(level, []).append(used[0] == rule)
        if used[0] != rule:
            slips[used[0]] += 1
    for level, h in hits.items():
        assert sum(h) / len(h) == pytest.approx(LEVEL_RELIABILITY[level], abs=0.03)
    assert min(slips.values()) > 0.2 * sum(slips.values())  # slips spread over the other rules
    assert [p for p, _ in islice(stream_rules(0), 50)] == [p for p, _ in pairs[:50]]
