"""Per-preset details behind the analysis in RESULTS.md, read from a `priorl compare` output directory.

    python benchmarks/compare_details.py runs/compare

For each preset, averaged over its seeds: the final held-out accuracy by level (greedy) and avg@k, the
sampler's pool sizes and forgetting / breakthrough totals at the last step, and the informative fraction
over the last 50 steps. (Under `grpo` and `adv-replay` the sampler is uniform and its pools are bookkeeping.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import mean

POOL_KEYS = ("active", "solved", "unsolved", "forgetting_total", "breakthroughs_total")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def preset_details(preset_dir: Path) -> dict:
    seeds = sorted(p for p in preset_dir.glob("seed_*") if (p / "eval.jsonl").exists())
    by_level: dict[str, list[float]] = {}
    sampled, pools, late_informative = [], {k: [] for k in POOL_KEYS}, []
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
    return {
        "seeds": len(seeds),
        "final_by_level": {lvl: round(mean(v), 3) for lvl, v in sorted(by_level.items())},
        "final_avg_at_k": round(mean(sampled), 3) if sampled else None,
        "final_pools": {k: round(mean(v), 1) for k, v in pools.items()},
        "informative_fraction_last_50_steps": round(mean(late_informative), 3),
    }


def main(out_dir: str) -> None:
    root = Path(out_dir)
    if not (root / "summary.json").exists():
        sys.exit(f"{root}/summary.json not found: give the --out directory of a finished `priorl compare`")
    details = {p.name: preset_details(p) for p in sorted(root.iterdir()) if p.is_dir() and any(p.glob("seed_*"))}
    print(json.dumps(details, indent=1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/compare")
