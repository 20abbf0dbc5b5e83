"""A user verifier for the tests: raises on every other completion."""

_calls = {"n": 0}


def score(completion: str, answer: str, **kwargs) -> float:
    _calls["n"] += 1
    if _calls["n"] % 2:
        raise RuntimeError("flaky verifier")
    return float(completion.strip() == answer.strip())
