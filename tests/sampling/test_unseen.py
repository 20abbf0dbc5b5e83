"""The per-level unseen queues against a plain-Python reference."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from priorl.sampling.unseen import UnseenQueues

M, L = 24, 3

ops = st.lists(
    st.one_of(
        st.tuples(st.just("prio"), st.integers(0, L - 1), st.booleans(), st.sampled_from([0.05, 0.1, 0.2])),
        st.tuples(st.just("shared"), st.sampled_from([0.05, 0.1, 0.2])),
        st.tuples(st.just("remove"), st.lists(st.integers(0, M - 1), max_size=4)),
        st.tuples(st.just("take"), st.integers(1, 5), st.booleans()),
    ),
    max_size=40,
)


@given(st.integers(1, L), st.lists(st.integers(0, L - 1), min_size=M, max_size=M), st.permutations(range(M)), ops)
def test_unseen_queues_match_reference(num_levels, levels, order, operations):
    levels, order = np.array(levels) % num_levels, np.array(order)
    operations = [op for op in operations if op[0] != "prio" or op[1] < num_levels]
    q = UnseenQueues(order, levels, num_levels)
    rank = {int(pid): r for r, pid in enumerate(order)}
    own, prio, shared = [False] * L, [0.0] * L, 0.0
    left = set(range(M))

    def best():
        return sorted(left, key=lambda i: (-(prio[levels[i]] if own[levels[i]] else shared), rank[i]))

    for op in operations:
        if op[0] == "prio":
            _, lv, is_own, value = op
            q.set_priorities(np.array([lv]), np.array([is_own]), np.array([value]))
            own[lv], prio[lv] = is_own, value if is_own else 0.0
        elif op[0] == "shared":
            q.shared_priority = shared = op[1]
        elif op[0] == "remove":
            q.remove(np.array(op[1], dtype=np.int64))
            left -= set(op[1])
        else:
            _, n, put_back = op
            want = best()[:n]
            got = q.take(n)
            assert got == want
            left -= set(got)
            if put_back:  # what Thompson selection does with the candidates it does not keep
                q.unpop(np.array(got[1:], dtype=np.int64))
                left |= set(got[1:])
        assert len(q) == len(left)
        top = q.peek()
        assert (top is None) == (not left)
        if top is not None:
            assert top[1] == best()[0]


def test_state_round_trip():
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 4, size=100)
    q = UnseenQueues(rng.permutation(100), levels, 4)
    q.set_priorities(np.arange(4), np.array([True, False, True, False]), np.array([0.2, 0.0, 0.1, 0.0]))
    q.shared_priority = 0.15
    q.take(30)
    q.remove(np.arange(10))
    r = UnseenQueues(np.arange(100), levels, 4)
    r.load_state_dict(q.state_dict())
    r.set_priorities(np.arange(4), np.array([True, False, True, False]), np.array([0.2, 0.0, 0.1, 0.0]))
    r.shared_priority = 0.15
    assert r.take(100) == q.take(100)
