"""The builtin arithmetic family: disjoint splits, balanced levels, correct answers, determinism."""

from __future__ import annotations

import itertools
import re
from collections import Counter

import pytest

from priorl.data import arithmetic_problems, stream_arithmetic
from priorl.data.arithmetic import LEVELS, canonical_key, in_test_split

EXPR = re.compile(r"^(\d+)([+\-*])(\d+)=$")


def parse(prompt: str) -> tuple[int, str, int]:
    m = EXPR.match(prompt)
    assert m, prompt
    return int(m.group(1)), m.group(2), int(m.group(3))


@pytest.fixture(scope="module")
def train():
    return arithmetic_problems("train")


@pytest.fixture(scope="module")
def test():
    return arithmetic_problems("test")


def test_sizes_and_balance(train, test):
    assert len(train) == 4000 and len(test) == 500
    assert Counter(p.level for p in train) == {lv: 800 for lv in LEVELS}
    assert Counter(p.level for p in test) == {lv: 100 for lv in LEVELS}
    # Round-robin order: every prefix of 5k problems is balanced.
    assert [p.level for p in train[:10]] == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]


def test_ids_and_sources(train, test):
    assert [p.id for p in train] == list(range(len(train)))
    assert train[7].source == "builtin:arithmetic:7"
    assert test[3].source == "builtin:arithmetic-test:3"


def test_answers_are_exact_integers(train, test):
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
    for p in itertools.chain(train, test):
        a, op, b = parse(p.prompt)
        assert p.answer == str(ops[op](a, b)), p


def test_levels_match_their_definition(train, test):
    for p in itertools.chain(train, test):
        a, op, b = parse(p.prompt)
        if p.level == 1:
            assert op == "+" and 10 <= a <= 99 and 10 <= b <= 99
            assert a % 10 + b % 10 <= 9 and a // 10 + b // 10 <= 9  # no carry
        elif p.level == 2:
            assert op == "+" and 10 <= a <= 99 and 10 <= b <= 99
            assert a % 10 + b % 10 >= 10 or a // 10 + b // 10 >= 10  # some carry
        elif p.level == 3:
            assert op == "-" and 10 <= b <= a <= 99
        elif p.level == 4:
            assert op in "+-" and 100 <= a <= 999 and 100 <= b <= 999 and int(p.answer) >= 0
        else:
            assert p.level == 5 and op == "*"
            assert sorted([a, b])[0] in range(2, 10) and sorted([a, b])[1] in range(10, 100)


def test_splits_are_disjoint_even_up_to_commutation(train, test):
    train_keys = {canonical_key(*parse(p.prompt)) for p in train}
    test_keys = {canonical_key(*parse(p.prompt)) for p in test}
    assert not train_keys & test_keys
    assert all(not in_test_split(*parse(p.prompt)) for p in train)
    assert all(in_test_split(*parse(p.prompt)) for p in test)


def test_no_duplicates_within_a_split(train, test):
    for split in (train, test):
        assert len({p.prompt for p in split}) == len(split)


def test_commuted_twins_share_a_side():
    for a, b in [(12, 34), (7, 58), (99, 10)]:
        assert in_test_split(a, "+", b) == in_test_split(b, "+", a)
        assert in_test_split(a, "*", b) == in_test_split(b, "*", a)


def test_deterministic_and_seeded(train):
    assert arithmetic_problems("train") == train
    other = arithmetic_problems("train", seed=1, per_level=20)
    assert [p.prompt for p in other] != [p.prompt for p in train[:100]]


def test_pretraining_stream_never_yields_test_problems(test):
    test_keys = {canonical_key(*parse(p.prompt)) for p in test}
    items = list(itertools.islice(stream_arithmetic(0), 5000))
    assert all(not in_test_split(it.a, it.op, it.b) for it in items)
    assert not {canonical_key(it.a, it.op, it.b) for it in items} & test_keys
    assert set(Counter(it.level for it in items)) == set(LEVELS)
    only_easy = list(itertools.islice(stream_arithmetic(0, weights=(1, 0, 0, 0, 0)), 100))
    assert {it.level for it in only_easy} == {1}


def test_bad_arguments():
    with pytest.raises(ValueError, match="split must be"):
        arithmetic_problems("valid")
    with pytest.raises(ValueError, match="unknown arithmetic levels"):
        arithmetic_problems("train", levels=(9,))
    with pytest.raises(ValueError, match="weights"):
        next(stream_arithmetic(0, weights=(1, 2)))


def test_arithmetic_n_option_keeps_the_first_n_with_every_level():
    from priorl.data import DatasetError, load_problems
    from priorl.data.prepare import builtin_test_set

    full = load_problems("builtin:arithmetic-instruct")
    few = load_problems("builtin:arithmetic-instruct:n=160")
    assert [p.prompt for p in few] == [p.prompt for p in full[:160]] and [p.id for p in few] == list(range(160))
    assert {p.level for p in few} == {1, 2, 3, 4, 5} and sum(p.level == 5 for p in few) == 32
    assert builtin_test_set("builtin:arithmetic-instruct:n=160") == "builtin:arithmetic-instruct-test"
    with pytest.raises(DatasetError, match="takes one option, n=N"):
        load_problems("builtin:arithmetic:size=3")
