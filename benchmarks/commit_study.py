"""Copy a study's finished runs into a folder to commit: logs and summaries, no checkpoints.

    python benchmarks/commit_study.py runs/smollm2-r11 benchmarks/smollm2-r11

Copies OUT/study.json (and summary.json, report.md and the plots when the study has finished) and, of each run
directory (tune/*/*/seed_*, eval/*/*/seed_*), only finished ones (their summary.json says so), without
checkpoints/, samples.jsonl, progress.png or tb/. Runs still in flight stay where they are, checkpoints and all;
`priorl compare --resume DEST` (or --resume OUT on the machine that has them) reuses every finished run, since a
finished run needs only its logs. Prints what it copied.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from priorl.study.records import read_json

SKIP = {"checkpoints", "samples.jsonl", "progress.png", "tb", "trl"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study")
    ap.add_argument("dest")
    args = ap.parse_args()
    src, dest = Path(args.study), Path(args.dest)
    if not (src / "study.json").is_file():
        raise SystemExit(f"{src}: no study.json (is it a priorl compare study?)")
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, dest / f.name)
    copied = waiting = 0
    for run in sorted([*src.glob("tune/*/*/seed_*"), *src.glob("eval/*/*/seed_*")]):
        if (read_json(run / "summary.json") or {}).get("status") != "finished":
            waiting += 1
            continue
        target = dest / run.relative_to(src)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(run, target, ignore=lambda _dir, names: [n for n in names if n in SKIP])
        copied += 1
    print(f"{dest}: {copied} finished run(s) copied; {waiting} not finished (left in {src})")


if __name__ == "__main__":
    main()
