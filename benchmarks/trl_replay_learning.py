"""Learning check for rollout replay inside TRL: TRL alone against TRL + priorl's replay, equal generation budget.

    python benchmarks/trl_replay_learning.py run --arm trl --seed 0 --out runs/trl-replay
    python benchmarks/trl_replay_learning.py run --arm trl+replay --seed 0 --out runs/trl-replay
    python benchmarks/trl_replay_learning.py report runs/trl-replay

Both arms are TRL 1.16's ``GRPOTrainer`` with the same model, data, GRPOConfig, seed and number of generations
(so the same number of completions generated); the replay arm is ``PriorlGRPOTrainer(replay=
AdvReplayBuffer(...))`` without a problem sampler, so the only difference is the replayed rows. The default
testbed is the study's (benchmarks/RESULTS.md): the shipped tiny-rules model on ``builtin:rules``, held-out
greedy accuracy on ``builtin:rules-test`` scored with the exact verifier, evaluated with priorl's evaluator on
the prompt ids TRL itself trains on. One run per call, so two runs can share two cores (``&``); ``report``
prints the table of what is in ``--out``. Not a test: figures go to RESULTS.md with the command next to them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ARMS = ("trl", "trl+replay")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="train one arm with one seed and write OUT/ARM-seedS.json")
    run.add_argument("--arm", choices=ARMS, required=True)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--model", default="builtin:tiny-rules")
    run.add_argument("--train", default="builtin:rules")
    run.add_argument("--test", default="builtin:rules-test")
    run.add_argument("--generations", type=int, default=40, help="training generations (the budget)")
    run.add_argument("--problems", type=int, default=64, help="problems per generation")
    run.add_argument("--group-size", type=int, default=8)
    run.add_argument("--steps-per-generation", type=int, default=4, help="optimizer steps per generation")
    run.add_argument("--max-new-tokens", type=int, default=9)
    run.add_argument("--lr", type=float, default=2e-5)
    run.add_argument("--eval-every", type=int, default=10, help="generations between held-out evaluations")
    run.add_argument("--replay-ratio", type=float, default=0.5)
    run.add_argument("--tau-max", type=int, default=10)
    run.add_argument("--replay-warmup", type=int, default=10)
    report = sub.add_parser("report", help="the table of every run in a folder")
    report.add_argument("out", type=Path)
    return parser.parse_args()


def run(args: argparse.Namespace) -> None:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from priorl.config import ModelConfig
    from priorl.data import load_problems
    from priorl.eval.accuracy import evaluate
    from priorl.generation.hf import HFGenerator
    from priorl.integrations.trl import PriorlGRPOTrainer
    from priorl.models import load_policy, load_tokenizer
    from priorl.replay import AdvReplayBuffer
    from priorl.rewards import exact_score, make_verifier

    torch.manual_seed(args.seed)
    problems, test = load_problems(args.train), load_problems(args.test)
    data = Dataset.from_dict({"prompt": [p.prompt for p in problems], "answer": [p.answer for p in problems]})
    model_cfg = ModelConfig(path=args.model, device="cpu", dtype="float32")
    tok = load_tokenizer(model_cfg)
    tok.padding_side = "left"
    model = load_policy(model_cfg)
    rows = args.problems * args.group_size
    if rows % args.steps_per_generation:
        sys.exit(f"--problems x --group-size ({rows}) must be a multiple of --steps-per-generation")
    config = GRPOConfig(
        output_dir=str(args.out / f"{args.arm}-seed{args.seed}-trainer"),
        per_device_train_batch_size=rows // args.steps_per_generation,
        steps_per_generation=args.steps_per_generation,
        num_generations=args.group_size,
        max_completion_length=args.max_new_tokens,
        max_steps=args.generations * args.steps_per_generation,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        beta=0.0,
        temperature=1.0,
        logging_steps=args.steps_per_generation,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=args.seed,
        disable_tqdm=True,
    )

    def exact(completions, answer, **kwargs):
        return [exact_score(c, a) for c, a in zip(completions, answer, strict=True)]

    common = dict(model=model, reward_funcs=exact, args=config, train_dataset=data, processing_class=tok)
    if args.arm == "trl":
        trainer = GRPOTrainer(**common)
    else:
        replay = AdvReplayBuffer(
            replay_ratio=args.replay_ratio, tau_max=args.tau_max, warmup_steps=args.replay_warmup, seed=args.seed
        )
        trainer = PriorlGRPOTrainer(**common, replay=replay)

    def encode(prompts):  # the ids TRL generates from (and trains on)
        return [[int(t) for t in ids] for ids in trainer._tokenize_prompts(list(prompts))[0]]

    generator = HFGenerator(model, tok, max_new_tokens=args.max_new_tokens, batch_size=512, encode=encode)
    verifier = make_verifier("exact")
    curve: list[dict] = []
    start = time.perf_counter()

    def held_out(generation: int) -> None:
        t0 = time.perf_counter()
        result = evaluate(generator, test, verifier)
        curve.append(
            {"generation": generation, "completions": generation * rows, "accuracy": result["accuracy"],
             "eval_s": time.perf_counter() - t0}
        )  # fmt: skip
        print(f"[{args.arm} seed {args.seed}] generation {generation}: held-out {result['accuracy']:.3f}", flush=True)

    trained = {"rows": 0, "tokens": 0}
    inner = trainer._generate_and_score_completions

    def counting(inputs):  # rows and loss tokens of every training generation (fresh + replayed)
        out = inner(inputs)
        if trainer.model.training:
            trained["rows"] += int(out["completion_ids"].shape[0])
            trained["tokens"] += int(out["completion_mask"].sum())
        return out

    trainer._generate_and_score_completions = counting

    class Evaluate(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            generation = state.global_step // args.steps_per_generation
            if state.global_step % args.steps_per_generation == 0 and generation % args.eval_every == 0:
                held_out(generation)

    trainer.add_callback(Evaluate())
    held_out(0)
    trainer.train()
    verifier.close()
    if curve[-1]["generation"] != args.generations:
        held_out(args.generations)
    wall = time.perf_counter() - start - sum(c["eval_s"] for c in curve)
    result = {
        "arm": args.arm, "seed": args.seed, "setup": {k: (str(v) if isinstance(v, Path) else v)
                                                      for k, v in vars(args).items() if k != "cmd"},
        "completions_generated": args.generations * rows, "rows_trained": trained["rows"],
        "tokens_trained": trained["tokens"], "train_wall_s": wall, "curve": curve,
        "final_accuracy": curve[-1]["accuracy"],
    }  # fmt: skip
    if args.arm != "trl":
        result["replay"] = trainer.priorl_replay.metrics()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.arm}-seed{args.seed}.json"
    path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {path}")


def report(out: Path) -> None:
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*-seed*.json"))]
    if not runs:
        sys.exit(f"no runs in {out}")
    by_arm: dict[str, list[dict]] = {}
    for r in runs:
        by_arm.setdefault(r["arm"], []).append(r)
    points = [c["generation"] for c in runs[0]["curve"]]
    head = " | ".join(f"gen {g}" for g in points)
    print(f"| arm | seeds | {head} | final mean ± std | rows trained | train wall s |")
    print("|---|---|" + "---|" * len(points) + "---|---|---|")
    for arm in ARMS:
        rs = by_arm.get(arm, [])
        if not rs:
            continue
        cells = []
        for i in range(len(points)):
            vals = [r["curve"][i]["accuracy"] for r in rs if i < len(r["curve"])]
            cells.append(f"{100 * statistics.mean(vals):.1f}")
        finals = [r["final_accuracy"] for r in rs]
        std = statistics.stdev(finals) if len(finals) > 1 else 0.0
        rows = statistics.mean(r["rows_trained"] for r in rs)
        wall = statistics.mean(r["train_wall_s"] for r in rs)
        seeds = ",".join(str(r["seed"]) for r in rs)
        print(f"| {arm} | {seeds} | {' | '.join(cells)} | {100 * statistics.mean(finals):.1f} ± {100 * std:.1f} "
              f"| {rows:,.0f} | {wall:.0f} |")  # fmt: skip
    per_seed = {}
    for r in runs:
        per_seed.setdefault(r["seed"], {})[r["arm"]] = r["final_accuracy"]
    diffs = [100 * (v["trl+replay"] - v["trl"]) for v in per_seed.values() if len(v) == 2]
    if diffs:
        print(f"\nreplay - trl, per seed: {', '.join(f'{d:+.1f}' for d in diffs)} points")


def main() -> None:
    args = _parse()
    if args.cmd == "run":
        run(args)
    else:
        report(args.out)


if __name__ == "__main__":
    main()
