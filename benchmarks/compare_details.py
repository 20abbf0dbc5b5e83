"""Per-preset details behind the analysis in RESULTS.md, read from a `priorl compare` output directory.

    python benchmarks/compare_details.py runs/compare

For each preset, averaged over its seeds: the final held-out accuracy by level (greedy) and avg@k, the
sampler's pool sizes and forgetting / breakthrough totals at the last step, the informative fraction
over all steps and the last 50, and, from batches.jsonl, which levels the generation budget went to
and the training reward per level in the first and the last 20 steps. (Under `grpo` and `adv-replay` the
sampler is uniform and its pools are bookkeeping.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import mean

POOL_KEYS = ("active", "solved", "unsolved", "forgetting_total", "breakthroughs_total")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _levels(run_dir: Path) -> list | None:
    """Each training problem's level, as the run numbered them (after data.levels), or None."""
    import yaml

    from priorl.data import load_problems

    data = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]
    keys = {k: data[k] for k in ("prompt_key", "answer_key", "level_key") if k in data}
    problems = load_problems(data["train"], **keys)
    if data.get("levels"):
        problems = [p for p in problems if p.level in data["levels"]]
    if data.get("test") == "auto" and not data["train"].startswith("builtin:"):
        return None  # a held-out split renumbers the problems; not needed for the builtin study
    return [p.level for p in problems]


def _by_level(batches: list[dict], levels: list) -> tuple[dict, dict]:
    """(share of generated groups per level, mean training reward per level) over ``batches``."""
    count: dict = {}
    reward: dict = {}
    for b in batches:
        for pid, rewards in zip(b["problem_ids"], b["rewards"], strict=True):
            lvl = str(levels[pid])
            count[lvl] = count.get(lvl, 0) + 1
            reward.setdefault(lvl, []).append(sum(rewards) / len(rewards))
    total = sum(count.values()) or 1
    return (
        {k: round(v / total, 3) for k, v in sorted(count.items())},
        {k: round(mean(v), 3) for k, v in sorted(reward.items())},
    )


def preset_details(preset_dir: Path) -> dict:
    seeds = sorted(p for p in preset_dir.glob("seed_*") if (p / "eval.jsonl").exists())
    by_level: dict[str, list[float]] = {}
    sampled, pools, late_informative, informative = [], {k: [] for k in POOL_KEYS}, [], []
    budget_share: dict[str, list[float]] = {}
    reward_first: dict[str, list[float]] = {}
    reward_last: dict[str, list[float]] = {}
    for seed_dir in seeds:
        final = _lines(seed_dir / "eval.jsonl")[-1]
        for level, row in final["by_level"].items():
            by_level.setdefault(level, []).append(row["accuracy"])
        if "sampled" in final:
            sampled.append(final["sampled"]["accuracy"])
        metrics = _lines(seed_dir / "metrics.jsonl")
        for key in POOL_KEYS:
            pools[key].append(metrics[-1][f"sampler/{key}"])
        late_informative.append(mean(m["sampler/informative_fraction"] for m in metrics[-50:]))
        informative.append(mean(m["informative_fraction"] for m in metrics))
        levels = _levels(seed_dir)
        batches = _lines(seed_dir / "batches.jsonl") if (seed_dir / "batches.jsonl").exists() else []
        if levels is not None and batches:
            share, _ = _by_level(batches, levels)
            _, first = _by_level(batches[:20], levels)
            _, last = _by_level(batches[-20:], levels)
            for target, values in ((budget_share, share), (reward_first, first), (reward_last, last)):
                for k, v in values.items():
                    target.setdefault(k, []).append(v)

    def avg(d: dict) -> dict:
        return {k: round(mean(v), 3) for k, v in sorted(d.items())}

    return {
        "seeds": len(seeds),
        "final_by_level": {lvl: round(mean(v), 3) for lvl, v in sorted(by_level.items())},
        "final_avg_at_k": round(mean(sampled), 3) if sampled else None,
        "final_pools": {k: round(mean(v), 1) for k, v in pools.items()},
        "informative_fraction": round(mean(informative), 3),
        "informative_fraction_last_50_steps": round(mean(late_informative), 3),
        "budget_share_by_level": avg(budget_share),
        "train_reward_by_level_first_20_steps": avg(reward_first),
        "train_reward_by_level_last_20_steps": avg(reward_last),
    }


def main(out_dir: str) -> None:
    root = Path(out_dir)
    if not (root / "summary.json").exists():
        sys.exit(f"{root}/summary.json not found: give the --out directory of a finished `priorl compare`")
    details = {p.name: preset_details(p) for p in sorted(root.iterdir()) if p.is_dir() and any(p.glob("seed_*"))}
    print(json.dumps(details, indent=1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/compare")
