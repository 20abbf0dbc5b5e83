"""The indexed heap and the recency list against plain-Python references."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from priorl.sampling.heap import IndexedMaxHeap
from priorl.sampling.recency import RecencyList

N = 30

heap_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("push"),
            st.integers(0, N - 1),
            st.sampled_from([0.0, 0.1, 0.25, 0.24, 1e-300, 5.0]),
            st.integers(-1, 50),
        ),
        st.tuples(st.just("discard"), st.integers(0, N - 1)),
        st.tuples(st.just("pop"), st.integers(1, 5)),
    ),
    max_size=80,
)


@given(heap_ops)
def test_heap_matches_reference(ops):
    heap = IndexedMaxHeap(N)
    ref: dict[int, tuple[float, int]] = {}
    for op in ops:
        if op[0] == "push":
            _, pid, prio, tie = op
            heap.push_many(np.array([pid]), np.array([prio]), np.array([tie]))
            ref[pid] = (prio, tie)
        elif op[0] == "discard":
            heap.discard(op[1])
            ref.pop(op[1], None)
        else:
            got = heap.pop_many(op[1])
            want = sorted(ref, key=lambda i: (-ref[i][0], ref[i][1], i))[: op[1]]
            assert got == want
            for pid in want:
                del ref[pid]
        assert len(heap) == len(ref)
        assert all((pid in heap) == (pid in ref) for pid in range(N))


def test_heap_compacts_dead_entries():
    heap = IndexedMaxHeap(10)
    for k in range(5000):  # re-keying the same ids leaves dead entries behind
        heap.push_many(np.arange(10), np.full(10, k % 7 / 10), np.arange(10))
    assert len(heap) == 10
    assert len(heap._heap) <= 2 * 10 + 1024 + 10
    assert sorted(heap.pop_many(10)) == list(range(10))


def test_heap_rebuild_gives_same_order():
    rng = np.random.default_rng(0)
    ids = rng.permutation(100)[:60]
    prio = rng.choice([0.0, 0.1, 0.25], size=60)
    tie = rng.permutation(60)
    a, b = IndexedMaxHeap(100), IndexedMaxHeap(100)
    a.push_many(ids, prio, tie)
    b.rebuild(ids, prio, tie)
    assert a.pop_many(60) == b.pop_many(60)


def test_heap_restore_puts_popped_ids_back_with_their_keys():
    rng = np.random.default_rng(1)
    ids = np.arange(50)
    prio, tie = rng.choice([0.0, 0.1, 0.25], size=50), rng.permutation(50)
    a, b = IndexedMaxHeap(50), IndexedMaxHeap(50)
    a.push_many(ids, prio, tie)
    b.push_many(ids, prio, tie)
    taken = a.pop_many(20)
    a.restore(taken[5:])
    a.restore(taken[5:])  # already back: no second copy
    assert len(a) == 45
    assert a.pop_many(50) == [i for i in b.pop_many(50) if i not in taken[:5]]


@given(st.lists(st.integers(0, 19), max_size=100))
def test_recency_matches_reference(touches):
    lst = RecencyList(20)
    ref: list[int] = []
    for pid in touches:
        lst.touch(pid)
        if pid in ref:
            ref.remove(pid)
        ref.append(pid)
        assert list(lst.oldest()) == ref
        assert len(lst) == len(ref)
    copy = RecencyList(20)
    copy.load_order(lst.order())
    assert list(copy.oldest()) == ref
    copy.touch_many(reversed(ref))
    assert list(copy.oldest()) == list(reversed(ref))
