"""Shared helpers of the sampler tests."""

import json

import numpy as np


def binary_group(p: float, g: int = 8) -> list[float]:
    """A group with round(p * g) successes: reward variance p(1-p) exactly for p in multiples of 1/g."""
    k = round(p * g)
    return [1.0] * k + [0.0] * (g - k)


def run(sampler, steps, batch_size, reward_fn):
    """Drive the sampler; returns the list of batches."""
    batches = []
    for t in range(steps):
        ids = sampler.sample(batch_size)
        batches.append(ids)
        sampler.observe(ids, [reward_fn(t, i) for i in ids])
    return batches


def to_json_and_back(state):
    def enc(x):
        if isinstance(x, np.ndarray):
            return {"__ndarray__": x.tolist(), "dtype": str(x.dtype)}
        if isinstance(x, dict):
            return {k: enc(v) for k, v in x.items()}
        return x

    def dec(x):
        if isinstance(x, dict) and "__ndarray__" in x:
            return np.asarray(x["__ndarray__"], dtype=x["dtype"])
        if isinstance(x, dict):
            return {k: dec(v) for k, v in x.items()}
        return x

    return dec(json.loads(json.dumps(enc(state))))
