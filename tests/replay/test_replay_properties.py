"""Hypothesis properties of both replay buffers, checked against a plain-list model after every call."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from replay_helpers import batch

from priorl.replay import AdvReplayBuffer, NaiveReplayBuffer

ADVANTAGES = st.sampled_from([0.0, 0.0, 0.25, -0.25, 0.5, -0.75, 1.0])

# One call on the buffer: (kind, step increment, payload). Payload: advantages of the rollouts born
# at this step (add, compose) or the number to draw (sample).
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("compose"), st.integers(0, 3), st.lists(ADVANTAGES, max_size=6)),
        st.tuples(st.just("add"), st.integers(0, 2), st.lists(ADVANTAGES, max_size=6)),
        st.tuples(st.just("sample"), st.integers(0, 3), st.integers(0, 8)),
    ),
    max_size=25,
)


@st.composite
def buffers(draw):
    common = {
        "capacity": draw(st.integers(1, 12)),
        "replay_ratio": draw(st.sampled_from([0.0, 0.5, 1.0, 1.5])),
        "warmup_steps": draw(st.integers(0, 3)),
        "seed": draw(st.integers(0, 1000)),
    }
    if draw(st.booleans()):
        return NaiveReplayBuffer(**common)
    return AdvReplayBuffer(
        tau_max=draw(st.integers(0, 4)), priority_exponent=draw(st.sampled_from([0.0, 0.5, 1.0])), **common
    )


class Model:
    """What the buffer must hold: the newest ``capacity`` non-zero-advantage rollouts, minus expired ones."""

    def __init__(self, buf):
        self.buf = buf
        self.stored = []

    def add(self, rollouts):
        self.stored += [r for r in rollouts if r.advantage != 0.0]
        self.stored = self.stored[max(0, len(self.stored) - self.buf.capacity) :]

    def expire(self, step):
        if self.buf.tau_max is not None:
            self.stored = [r for r in self.stored if step - r.step <= self.buf.tau_max]

    def check_draw(self, drawn, n, step):
        assert len({id(r) for r in drawn}) == len(drawn), "a draw repeated a rollout"
        assert len(drawn) == min(n, len(self.stored))
        for r in drawn:
            assert any(r is s for s in self.stored), "drew a rollout that is not stored"
            assert r.advantage != 0.0, "replayed a zero-advantage rollout"
            if self.buf.tau_max is not None:
                assert step - r.step <= self.buf.tau_max, "replayed a rollout older than tau_max"


@settings(max_examples=80, deadline=None)
@given(buf=buffers(), ops=OPS)
def test_buffer_matches_model_and_keeps_its_invariants(buf, ops):
    model = Model(buf)
    step, next_id = 0, 0
    for kind, inc, payload in ops:
        step += inc
        if kind == "sample":
            model.expire(step)
            drawn = buf.sample(payload, step)
            model.check_draw(drawn, payload, step)
        else:
            rollouts = batch(payload, step, start_id=next_id)
            next_id += len(rollouts)
            if kind == "add":
                buf.add(rollouts)
            else:
                model.expire(step)
                out = buf.compose(rollouts, step)
                # Every fresh rollout, first and in order (the same objects).
                assert len(out) >= len(rollouts)
                assert all(a is b for a, b in zip(out, rollouts, strict=False))
                replayed = out[len(rollouts) :]
                n = round(buf.replay_ratio * len(rollouts)) if step >= buf.warmup_steps else 0
                model.check_draw(replayed, n, step)
                assert not any(r is f for r in replayed for f in rollouts), "a fresh rollout was replayed"
            model.add(rollouts)
        assert buf.stored() == model.stored
        assert len(buf) == len(model.stored) <= buf.capacity
        assert buf.metrics()["size"] == len(model.stored)
