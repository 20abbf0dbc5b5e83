"""The answer-extraction rules (docs/verifiers.md), on real model output and on the cases the rules name."""

from fractions import Fraction

import pytest

from priorl.rewards import answer_segment, extract_answer, math_score, numeric_score

# Greedy completions of SmolLM2-135M-Instruct (Q4_1 GGUF, ChatML template, stop "\n") to builtin arithmetic
# prompts, copied verbatim: (prompt, completion, what the rules read, gold).
SMOLLM2 = [
    ("56 + 13 =", "The answer is 16.", Fraction(16), "69"),
    ("15 + 90 =", "The answer is 15 + 90 = 90.", Fraction(15), "105"),  # first number after the cue
    ("Compute 15 + 90. Reply with just the number.", "15 + 90 = 15 + 15 = ", Fraction(15), "105"),
    ("What is 15 + 90?", "15 + 90 = 15 * 10 = 150.", Fraction(150), "105"),  # no cue: the last number
    ("What is 19 + 30?", "19 + 30 = 39", Fraction(39), "49"),
    ("Compute 68 - 53. Reply with just the number.", "68 - 53 = 11", Fraction(11), "15"),
    ("What is 56 + 13? Answer with a number.", "15.", Fraction(15), "69"),
    (
        "What is 68 - 53?",
        "To calculate 68 - 53, you simply subtract 53 from 68, which gives you",
        Fraction(68),
        "15",
    ),
    (
        "What is 877 + 919? Answer with a number.",
        "To solve this problem, we need to find the sum of 877",
        Fraction(877),
        "1796",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("prompt", "completion", "read", "gold"), SMOLLM2)
def test_real_smollm2_output(prompt, completion, read, gold):
    assert extract_answer(completion) == read
    assert numeric_score(completion, gold) == float(read == Fraction(gold))


def test_a_correct_direct_answer_scores():
    assert numeric_score("19 + 30 = 49", "49") == 1.0
    assert numeric_score("The answer is 49.", "49") == 1.0


@pytest.mark.parametrize(
    ("text", "cue", "read"),
    [
        ("The answer is 12. Question: what is 3+4? The answer is 7", "phrase", Fraction(12)),  # run-on
        ("So the final answer is: $1,234$.", "phrase", Fraction(1234)),
        ("Answer: -3/4", "phrase", Fraction(-3, 4)),
        ("6*2=<<6*2=12>>12 eggs. #### 72\n#### 5", "####", Fraction(72)),  # a GSM8K gold answer
        ("We get \\boxed{\\frac{3}{4}} and later \\boxed{9}", "boxed", Fraction(3, 4)),
        ("x = \\boxed{{2} + 40}", "boxed", Fraction(2)),  # nested braces: the first number inside
        ("#### then \\boxed{5}", "####", Fraction(5)),  # the earliest cue wins; its first number
        ("The answer is unknown.", "phrase", None),  # a cue with no number: no answer, not the last number
        ("12 + 34 = 46", None, Fraction(46)),
        ("", None, None),
    ],
)
def test_cue_rules(text, cue, read):
    found = answer_segment(text)
    assert (found[0] if found else None) == cue
    assert extract_answer(text) == read


def test_gold_answers_follow_the_same_rules():
    assert numeric_score("The answer is 72", "Natalia sold 48/2 = 24 clips in May... #### 72") == 1.0
    assert numeric_score("72", "#### 72") == 1.0


def test_math_reads_after_the_first_cue():
    assert math_score("The answer is 1/2. Next question: the answer is 3", "0.5") == 1.0
    assert math_score("\\boxed{\\frac{1}{2}} but then \\boxed{3}", "3") == 0.0
    assert math_score("so $x = 3$", "3") == 1.0  # no cue: math-verify's own reading
    assert math_score("The answer is 3", "2 + 3 = 5. #### 3") == 1.0
