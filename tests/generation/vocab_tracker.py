"""Track the bytes held by live vocabulary-sized tensors while code runs (a CPU stand-in for a GPU memory peak).

Every tensor an aten op creates whose last dimension is the vocabulary is recorded (weakly); after each op
the bytes of the distinct storages still alive are summed, and the peak is kept. A generator that keeps one
``[batch, vocab]`` tensor per generated step shows a peak that grows with the number of steps. The storages of
``exclude`` (the model's parameters: the output layer's weight seen transposed is ``[hidden, vocab]``) do not
count.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class VocabTensorTracker(TorchDispatchMode):
    def __init__(self, vocab: int, exclude=()) -> None:
        super().__init__()
        self.vocab = vocab
        self._excluded = {t.untyped_storage().data_ptr() for t in exclude}
        self._live: weakref.WeakSet = weakref.WeakSet()
        self.peak_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.dim() >= 1 and t.shape[-1] == self.vocab:
                if t.untyped_storage().data_ptr() not in self._excluded:
                    self._live.add(t)
        storages = {}
        for t in list(self._live):
            s = t.untyped_storage()
            storages[s.data_ptr()] = s.nbytes()
        self.peak_bytes = max(self.peak_bytes, sum(storages.values()))
        return out
