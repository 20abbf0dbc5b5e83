"""The validation split: never trained or pretrained on, disjoint from the test split, the same training set in a
tuning run (eval.split=validation) and an evaluation run (eval.split=test)."""

import json

import pytest

from priorl.config import load_config
from priorl.data.arithmetic import arithmetic_problems, canonical_key
from priorl.data.prepare import builtin_validation_set, run_problems
from priorl.data.rules import in_test_split, rules_problems


def _key(p):
    digits, tag = p.prompt.split(":")
    return tag, digits


@pytest.mark.parametrize("mix", [{}, {"solved": 0.05, "unsolved": 0.05}])
def test_rules_validation_is_held_out_side_and_not_the_test_set(mix):
    val, test, train = (rules_problems(s, **mix) for s in ("validation", "test", "train"))
    assert len(val) == 500 and all(in_test_split(*_key(p)) for p in val)  # never pretrained or trained on
    assert not {p.prompt for p in val} & {p.prompt for p in test}
    assert not {p.prompt for p in val} & {p.prompt for p in train}
    assert {p.level for p in val} == {p.level for p in test}  # the same mix of levels
    assert val[0].source == "builtin:rules-validation:0"


def test_arithmetic_validation_skips_the_test_expressions():
    val, test = arithmetic_problems("validation"), arithmetic_problems("test")
    assert len(val) == 250
    keys = lambda ps: {canonical_key(*_expr(p)) for p in ps}  # noqa: E731
    assert not keys(val) & keys(test)


def _expr(p):
    for op in "+-*":
        a, sep, b = p.prompt.rstrip("=").partition(op)
        if sep and a and b:
            return int(a), op, int(b)
    raise AssertionError(p.prompt)


def test_auto_names_the_builtins_validation_set():
    assert builtin_validation_set("builtin:rules:solved=0.1,unsolved=0.2,n=900") == (
        "builtin:rules-validation:solved=0.1,unsolved=0.2"
    )
    assert builtin_validation_set("builtin:arithmetic-instruct") == "builtin:arithmetic-instruct-validation"
    assert builtin_validation_set("data.jsonl") is None


def test_a_files_validation_split_comes_out_of_training_in_both_phases(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"{i}+1=", "answer": str(i + 1)}) + "\n" for i in range(200)))
    keys = [f"data.train={path}", "data.validation=auto", "data.validation_fraction=0.2", "train.batch_size=4"]
    tune = run_problems(load_config(None, [*keys, "eval.split=validation"]))
    final = run_problems(load_config(None, keys))
    assert [p.prompt for p in tune.train] == [p.prompt for p in final.train]  # same training set
    train, val, test = ({p.prompt for p in ps} for ps in (final.train, tune.test, final.test))
    assert len(test) == 20 and len(val) == 36 and len(train) == 144  # 10% test, then 20% of the rest
    assert not (train & val) and not (train & test) and not (val & test)
    assert "validation" in tune.held_out


def test_validation_overlapping_the_test_set_is_dropped_and_said(tmp_path):
    path = tmp_path / "v.jsonl"
    test = rules_problems("test", n=20)
    rows = [{"prompt": p.prompt, "answer": p.answer} for p in test[:3]] + [{"prompt": "x", "answer": "y"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(None, ["data.train=builtin:rules", "data.test=builtin:rules-test:n=20",
                             f"data.validation={path}", "eval.split=validation"])  # fmt: skip
    got = run_problems(cfg)
    assert [p.prompt for p in got.test] == ["x"] and "3 dropped that are also in the test set" in got.held_out


def test_validation_split_needs_a_validation_set():
    with pytest.raises(ValueError, match="data.validation is null"):
        run_problems(load_config(None, ["eval.split=validation"]))
