"""Where a run's numbers go: metrics.jsonl always, TensorBoard and W&B when asked.

Per step: every numeric metric. Per held-out evaluation: ``eval/accuracy`` (greedy pass@1), per level,
avg@k, mean length and verifier failures, against the step and, under ``eval_by_completions/``, against
the completions generated (the cost axis of every comparison); and a few sample completions with their
rewards as a text table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else (1e308 if value > 0 else -1e308)
    return value


def _cell(text: str, limit: int = 300) -> str:
    """Text for one Markdown table cell: one line, pipes escaped, long texts cut."""
    text = str(text).replace("|", "\\|").replace("\n", " ⏎ ")
    return text if len(text) <= limit else text[:limit] + " …"


class JsonlWriter:
    """Append one JSON object per line, flushed at once (a crash loses at most the line being written)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: dict) -> None:
        self._f.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def truncate_jsonl(path: Path, max_step: int) -> int:
    """Drop lines whose ``step`` is above ``max_step`` (and a torn last line). Returns the lines kept."""
    path = Path(path)
    if not path.exists():
        return 0
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break  # a torn line can only be the last one written
        if int(record.get("step", 0)) <= max_step:
            kept.append(line)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
    tmp.replace(path)
    return len(kept)


class MetricSinks:
    """Fan metrics out to metrics.jsonl, TensorBoard (``tb/``) and W&B."""

    def __init__(
        self,
        run_dir: Path,
        *,
        tensorboard: bool,
        wandb: bool,
        wandb_project: str,
        config: dict,
        purge_after: int | None = None,
    ):
        self.jsonl = JsonlWriter(Path(run_dir) / "metrics.jsonl")
        self.tb = None
        self.wandb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # On resume, TensorBoard drops the events of steps after the checkpoint (they run again).
            purge = purge_after + 1 if purge_after is not None else None
            self.tb = SummaryWriter(log_dir=str(Path(run_dir) / "tb"), purge_step=purge)
        if wandb:
            try:
                import wandb as wandb_module
            except ImportError:
                raise ValueError("logging.wandb needs wandb: pip install 'priorl[wandb]'") from None
            self.wandb = wandb_module.init(project=wandb_project, config=config, dir=str(run_dir))

    def write(self, step: int, metrics: dict) -> None:
        self.jsonl.write({"step": step, **metrics})
        numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self.tb is not None:
            for key, value in numeric.items():
                self.tb.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(numeric, step=step)

    def write_eval(self, step: int, result: dict) -> None:
        """Held-out accuracy of one evaluation (the ``evaluate`` result) to TensorBoard and W&B."""
        scalars = {
            "eval/accuracy": result["accuracy"],
            "eval/mean_length": result["mean_length"],
            "eval/verifier_failures": result["verifier_errors"] + result["verifier_timeouts"],
        }
        for level, entry in result["by_level"].items():
            scalars[f"eval/accuracy_level_{level}"] = entry["accuracy"]
        if "sampled" in result:
            scalars[f"eval/avg@{result['sampled']['samples']}"] = result["sampled"]["accuracy"]
        if self.tb is not None:
            for key, value in scalars.items():
                self.tb.add_scalar(key, value, step)
            by_completions = int(result.get("rollouts_generated", 0))
            self.tb.add_scalar("eval_by_completions/accuracy", result["accuracy"], by_completions)
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def write_samples(self, step: int, examples: list[dict]) -> None:
        """A few held-out completions with their rewards, as a table (TensorBoard text, W&B table)."""
        if not examples:
            return
        if self.tb is not None:
            rows = ["| reward | prompt | answer | completion |", "|---|---|---|---|"]
            rows += [
                f"| {e['reward']:.2f} | {_cell(e['prompt'])} | {_cell(e['answer'])} | {_cell(e['completion'])} |"
                for e in examples
            ]
            self.tb.add_text("eval/samples", "\n".join(rows), step)
        if self.wandb is not None:
            import wandb as wandb_module

            columns = ["reward", "prompt", "answer", "completion"]
            table = wandb_module.Table(columns=columns, data=[[e[c] for c in columns] for e in examples])
            self.wandb.log({"eval/samples": table}, step=step)

    def close(self) -> None:
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
