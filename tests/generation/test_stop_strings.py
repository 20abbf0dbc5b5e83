"""Stop strings: the criterion decodes only rows whose new token may end a stop string, and stops every row
exactly where decoding every row at every step did (so the same tokens are sampled)."""

import numpy as np
import pytest
import torch

from priorl.data import load_problems
from priorl.generation import HFGenerator
from priorl.generation import hf as hf_module
from priorl.generation.hf import _ends_a_stop, stop_completion_table

PROMPTS = [p.prompt for p in load_problems("builtin:arithmetic")[:16]]


class DecodeEveryRow:
    """The criterion before round 6: decode the window of every row at every step."""

    def __init__(self, tokenizer, stops, start, may_complete=None):
        self.tokenizer, self.stops, self.start = tokenizer, list(stops), start
        self.window = max(len(s) for s in self.stops) + 4

    def __call__(self, input_ids, scores, **kwargs):
        lo = max(self.start, input_ids.shape[1] - self.window)
        tails = self.tokenizer.batch_decode(input_ids[:, lo:].tolist(), skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in tails], dtype=torch.bool)


def test_ends_a_stop():
    assert _ends_a_stop("on:", ["Question"])  # "on" ends the stop, ":" comes after
    assert _ends_a_stop("xQuestiony", ["Question"])
    assert not _ends_a_stop("Que", ["Question"])  # the stop's start, not its end
    assert _ends_a_stop("no", ["Question"])  # "Questio" + "no"
    assert not _ends_a_stop("xn", ["Question"])


def test_the_table_flags_the_tokens_that_can_end_a_stop(tok):
    table = stop_completion_table(tok, ["3\n"])
    assert table.shape == (len(tok) + 1,) and table[-1]
    flagged = {tok.convert_ids_to_tokens(i) for i in range(len(tok)) if table[i]}
    assert flagged == {"\n"}  # a one-character vocabulary: only the stop's last character can end it


def recording(criterion, log):
    """``criterion`` class whose instances log the step at which each row is first done."""

    class Recording(criterion):
        def __call__(self, input_ids, scores, **kwargs):
            done = super().__call__(input_ids, scores, **kwargs)
            first = log.setdefault(len(log), {}) if input_ids.shape[1] == self.start + 1 else log[len(log) - 1]
            for r in done.nonzero().flatten().tolist():
                first.setdefault(r, input_ids.shape[1])
            return done

    return Recording


@pytest.mark.parametrize("stops", [["3"], ["=1"], ["\n\n"], ["9+", "07"], ["1+1="]])
def test_same_tokens_as_decoding_every_row(model, tok, stops, monkeypatch):
    gen = HFGenerator(model, tok, max_new_tokens=12, stop=stops, batch_size=24)
    new_done, old_done = {}, {}
    monkeypatch.setattr(hf_module, "_StopStrings", recording(hf_module._StopStrings, new_done))
    torch.manual_seed(3)
    new = gen.generate(PROMPTS, 4)
    after_new = torch.randint(0, 10**6, (1,))
    decoded = []
    batch_decode = tok.batch_decode
    monkeypatch.setattr(tok, "batch_decode", lambda rows, **kw: decoded.append(len(rows)) or batch_decode(rows, **kw))
    torch.manual_seed(3)
    gen.generate(PROMPTS, 4)
    monkeypatch.setattr(tok, "batch_decode", batch_decode)
    monkeypatch.setattr(hf_module, "_StopStrings", recording(DecodeEveryRow, old_done))
    torch.manual_seed(3)
    old = gen.generate(PROMPTS, 4)
    assert len(new_done) == 2 * len(old_done) == 6  # three chunks a call
    assert [new_done[i] for i in range(3)] == [old_done[i] for i in range(3)]  # each row done at the same step
    after_old = torch.randint(0, 10**6, (1,))
    assert new.completion_ids == old.completion_ids and new.texts == old.texts and new.finished == old.finished
    assert all(np.array_equal(a, b) for a, b in zip(new.logprobs, old.logprobs, strict=True))
    assert after_new == after_old  # generation stopped at the same step: the RNG moved alike
    steps = max(len(c) for c in new.completion_ids)
    assert sum(decoded) < len(PROMPTS) * 4 * steps  # fewer rows decoded than every row at every step
