"""priorl's verl entry point without GPUs: config, verl's own TaskRunner setup, the PPO step's actor update, and
the checkpoint round trip. Only the Ray worker group (the actor on the GPUs) is replaced, by a recorder."""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("verl")

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf, open_dict  # noqa: E402
from verl import DataProto  # noqa: E402

from integrations.verl_helpers import (  # noqa: E402
    CONFIG_DIR,
    arithmetic_parquet,
    ppo_batch,
    step_of,
    tiny_model_with_template,
)
from priorl.integrations.verl import PriorlProblemSampler, main_ppo  # noqa: E402
from priorl.integrations.verl.main_ppo import VERL_LINE, PriorlTaskRunner, check_config, main  # noqa: E402
from priorl.integrations.verl.trainer import PriorlRayPPOTrainer, priorl_options  # noqa: E402

PROBLEMS, PER_STEP, N = 24, 4, 3  # 6 steps per epoch; 12 fresh rows per step
UNIT = 6  # ppo_mini_batch_size 2 × rollout.n 3, data-parallel size 2


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("verl")
    return {
        "model": tiny_model_with_template(root),
        "train": arithmetic_parquet(root / "train.parquet", PROBLEMS),
        "val": arithmetic_parquet(root / "val.parquet", 4),
    }


# Both pieces on, replay with a short warm-up and window so a few steps exercise it.
PIECES = (
    "priorl.sampler.enable=true",
    "priorl.replay.enable=true",
    "priorl.replay.replay_ratio=0.5",
    "priorl.replay.warmup_steps=1",
    "priorl.replay.tau_max=2",
    "+priorl.sampler.retest_every=3",
)


def config(files, *overrides, pieces=PIECES, estimator="grpo"):
    """The entry point's composed config for the tiny run; ``pieces=()`` keeps the priorl defaults and
    ``estimator=None`` verl's own ``algorithm.adv_estimator``."""
    base = [
        f"data.train_files={files['train']}",
        f"data.val_files={files['val']}",
        f"data.train_batch_size={PER_STEP}",
        "data.max_prompt_length=16",
        "data.max_response_length=8",
        "data.filter_overlong_prompts=false",
        f"actor_rollout_ref.model.path={files['model']}",
        f"actor_rollout_ref.rollout.n={N}",
        "actor_rollout_ref.actor.ppo_mini_batch_size=2",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2",
        "trainer.n_gpus_per_node=1",
        "trainer.nnodes=1",
        "trainer.device=cpu",
        "trainer.logger=[console]",
    ]
    if estimator is not None:
        base.append(f"algorithm.adv_estimator={estimator}")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose("priorl_ppo_trainer", overrides=base + list(pieces) + list(overrides))


class Workers:
    """Records what verl's trainer sends the actor worker group and answers in the worker's format."""

    def __init__(self):
        self._dispatch_info = {"actor": [0, 1]}  # two data-parallel ranks
        self.updates = []
        self.saved = []

    def update_actor(self, data):
        if isinstance(data, DataProto):  # verl 0.7's default (legacy) workers take the DataProto
            self.updates.append({k: data.batch[k] for k in ("responses", "old_log_probs", "advantages")})
            return DataProto.from_single_dict(data={}, meta_info={"metrics": {"actor/pg_loss": 0.0}})
        from verl.utils import tensordict_utils as tu  # the engine workers take verl's no-padding TensorDict

        self.updates.append({k: data[k] for k in ("responses", "old_log_probs", "advantages")})
        return tu.get_tensordict(tensor_dict={}, non_tensor_dict={"metrics": {"mfu": 0.0, "pg_loss": 0.0}})

    def save_checkpoint(self, local_path, *args, **kwargs):
        os.makedirs(local_path, exist_ok=True)
        self.saved.append(local_path)

    def load_checkpoint(self, local_path, *args, **kwargs):
        assert os.path.isdir(local_path)


def build(cfg):
    """The trainer verl's own TaskRunner.run builds from ``cfg`` (priorl's runner), workers replaced."""
    built = {}

    class Trainer(PriorlRayPPOTrainer):
        def init_workers(self):
            self.actor_rollout_wg = Workers()

        def fit(self):
            built["trainer"] = self

    class Runner(PriorlTaskRunner):
        trainer_cls = Trainer

    Runner().run(cfg)
    return built["trainer"]


def run_steps(trainer, steps, batches):
    """verl's fit loop from the actor update's point of view: one loader batch per step, scored, updated."""
    records = []
    for step in steps:
        batch_dict = next(batches)
        indices = [int(info["index"]) for info in batch_dict["extra_info"]]
        trainer.global_steps = step
        output = trainer._update_actor(ppo_batch(indices, step, n=N))
        sent = trainer.actor_rollout_wg.updates[-1]
        replayed = sorted(r.tolist() for r in sent["responses"] if step_of(r) != step)
        records.append({"indices": indices, "replayed": replayed, "metrics": output.meta_info["metrics"]})
    return records


def loader_batches(trainer):
    while True:
        yield from trainer.train_dataloader


def test_verls_task_runner_builds_priorls_trainer(files):
    trainer = build(config(files))
    assert isinstance(trainer, PriorlRayPPOTrainer)
    sampler = trainer.train_dataloader.sampler
    assert isinstance(sampler, PriorlProblemSampler) and sampler is trainer.priorl_sampler
    assert sampler.rollout_n == N and sampler.sampler.retest_every == 3
    assert trainer.priorl_replay.buffer.tau_max == 2 and trainer.priorl_replay.buffer.replay_ratio == 0.5
    batch = next(iter(trainer.train_dataloader))  # verl's RLHFDataset rows, through priorl's sampler
    assert sorted(int(i["index"]) for i in batch["extra_info"]) == sorted(sampler.feed.pending[0])
    assert trainer.priorl_replay_unit() == UNIT


def test_actor_update_gets_replayed_rows_and_the_sampler_the_rewards(files):
    trainer = build(config(files))
    sent = trainer.actor_rollout_wg.updates
    records = run_steps(trainer, range(1, 7), loader_batches(trainer))
    assert trainer.priorl_sampler.metrics()["awaiting"] == 0  # every step's rewards reached the sampler
    assert trainer.priorl_sampler.feed.pending == []
    sizes = [len(update["responses"]) for update in sent]
    assert sizes[0] == PER_STEP * N  # step 1: nothing stored yet
    assert all(size % UNIT == 0 for size in sizes)
    assert any(size > PER_STEP * N for size in sizes)
    for step, (record, update) in enumerate(zip(records, sent, strict=True), start=1):
        assert len(record["replayed"]) == record["metrics"]["priorl/replay/replayed"]
        assert record["metrics"]["priorl/sampler/awaiting"] == 0
        for i, response in enumerate(update["responses"]):
            born = step_of(response)
            assert step - 2 <= born <= step  # tau_max = 2
            if born != step:  # a replayed row: its old log-probs and advantage as generated at its own step
                source = ppo_batch(records[born - 1]["indices"], born, n=N)
                j = next(j for j in range(len(source)) if torch.equal(source.batch["responses"][j], response))
                assert torch.equal(update["old_log_probs"][i], source.batch["old_log_probs"][j])
                assert torch.equal(update["advantages"][i], source.batch["advantages"][j])


@pytest.mark.parametrize("save_at", [3, 6])  # mid-epoch, and the last step of an epoch
def test_checkpoint_round_trip(files, tmp_path, save_at):
    overrides = (f"trainer.default_local_dir={tmp_path}", "trainer.resume_mode=auto")
    reference = build(config(files, *overrides[:1], "trainer.resume_mode=disable"))
    expected = run_steps(reference, range(1, save_at + 3), loader_batches(reference))

    first = build(config(files, *overrides))
    batches = loader_batches(first)
    run_steps(first, range(1, save_at + 1), batches)
    first._save_checkpoint()  # what verl calls after the actor update of a save step
    folder = tmp_path / f"global_step_{save_at}"
    for name in ("priorl_sampler", "priorl_replay"):
        assert (folder / f"{name}.json").is_file() and (folder / f"{name}.safetensors").is_file()
    assert (folder / "data.pt").is_file()
    assert (tmp_path / "latest_checkpointed_iteration.txt").read_text() == str(save_at)

    resumed = build(config(files, *overrides))
    resumed.global_steps = 0
    resumed._load_checkpoint()  # what verl's fit calls first
    assert resumed.global_steps == save_at
    got = run_steps(resumed, range(save_at + 1, save_at + 3), loader_batches(resumed))
    for a, b in zip(got, expected[save_at:], strict=True):
        assert a["indices"] == b["indices"]  # the same problems drawn next
        assert a["replayed"] == b["replayed"]  # the same rows replayed
        assert b["replayed"] or save_at == 6  # the comparison covers replay


def test_resume_without_priorls_files_is_an_error(files, tmp_path):
    trainer = build(config(files, f"trainer.default_local_dir={tmp_path}", "priorl.replay.enable=false"))
    run_steps(trainer, [1], loader_batches(trainer))
    trainer._save_checkpoint()
    resumed = build(config(files, f"trainer.default_local_dir={tmp_path}"))
    resumed.global_steps = 0
    with pytest.raises(ValueError, match=r"cannot resume priorl's replay from .*global_step_1.*does not exist"):
        resumed._load_checkpoint()


def test_config_errors_name_the_setting(files):
    cfg = config(files)
    check_config(cfg)
    cases = [
        (("data.dataloader_num_workers=4",), "data.dataloader_num_workers=4: priorl's sampler needs 0"),
        (("priorl.replay.replay_ratio=0.1",), r"rounds to 0 whole actor mini-batches of 6 rows"),
        (("+priorl.replay.ratio=1",), r"priorl.replay has unknown options \['ratio'\]"),
        (("algorithm.adv_estimator=gae",), "needs one advantage per rollout"),
        (("actor_rollout_ref.actor.use_prefix_grouper=true",), "use_prefix_grouper"),
        (("priorl.sampler.kind=greedy",), None),  # checked when the sampler is built
    ]
    for overrides, message in cases:
        if message is None:
            with pytest.raises(ValueError, match="sampler.kind 'greedy' is not a kind of sampler"):
                build(config(files, *overrides))
            continue
        with pytest.raises(ValueError, match=message):
            check_config(config(files, *overrides))
    hook = config(files)
    with open_dict(hook):
        hook.data.sampler = {"class_path": "pkg://priorl.integrations.verl", "class_name": "X"}
    with pytest.raises(ValueError, match="priorl's trainer builds its sampler itself"):
        check_config(hook)
    v1 = config(files, "trainer.use_v1=true")
    if VERL_LINE >= (0, 9):  # verl 0.9's TransferQueue trainer is not what priorl runs
        with pytest.raises(ValueError, match="trainer.use_v1=true: priorl runs verl's RayPPOTrainer"):
            check_config(v1)
    else:  # verl 0.7 has only the RayPPOTrainer and no such switch
        check_config(v1)
    bare = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "priorl"])
    with pytest.raises(ValueError, match="the config has no 'priorl' section"):
        check_config(bare)


def test_cli_reports_config_errors_without_a_traceback(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # hydra writes its outputs/ here
    argv = ["main_ppo", "priorl.sampler.enable=true", "data.dataloader_num_workers=2", "hydra.run.dir=."]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "priorl: error: data.dataloader_num_workers=2" in err and "Traceback" not in err


def test_defaults_are_replay_on_and_the_sampler_off(files):
    cfg = config(files, pieces=())
    assert cfg.priorl.sampler.enable is False and cfg.priorl.replay.enable is True
    options = check_config(cfg)
    assert options.sampler is None and options.replay is not None
    # The code's default for a section without `enable` is the same.
    bare = config(files, pieces=())
    with open_dict(bare):
        del bare.priorl.sampler["enable"]
        del bare.priorl.replay["enable"]
    assert priorl_options(bare) == options
    trainer = build(cfg)
    assert trainer.priorl_sampler is None and trainer.priorl_replay is not None
    assert not isinstance(trainer.train_dataloader.sampler, PriorlProblemSampler)  # verl's own sampler
    assert trainer.priorl_replay.buffer.replay_ratio == 0.5 and trainer.priorl_replay.buffer.warmup_steps == 20
    # A batch replay cannot take says how to turn the default off.
    batch = next(iter(trainer.train_dataloader))
    step = ppo_batch([int(info["index"]) for info in batch["extra_info"]], 1, n=N)
    odd = DataProto.from_dict(
        tensors={**step.batch, "mystery": torch.zeros(len(step))}, non_tensors=step.non_tensor_batch
    )
    trainer.global_steps = 1
    with pytest.raises(ValueError, match=r"\['mystery'\].*priorl.replay.enable=false turns replay off"):
        trainer._update_actor(odd)


def test_gae_with_the_default_replay_names_both_fixes(files, tmp_path, monkeypatch, capsys):
    for cfg in (config(files, pieces=(), estimator=None), config(files, pieces=(), estimator="gae")):
        assert cfg.algorithm.adv_estimator == "gae"  # verl's own default
        with pytest.raises(ValueError) as error:
            check_config(cfg)
        message = str(error.value)
        assert "algorithm.adv_estimator=gae" in message
        assert "algorithm.adv_estimator=grpo" in message and "priorl.replay.enable=false" in message
    # Either fix is accepted.
    assert check_config(config(files, pieces=(), estimator="rloo")).replay is not None
    assert check_config(config(files, "priorl.replay.enable=false", pieces=(), estimator=None)).replay is None
    # From the command line: the same message, no traceback.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["main_ppo", "hydra.run.dir=."])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "priorl: error: algorithm.adv_estimator=gae" in err and "priorl.replay.enable=false" in err
    assert "algorithm.adv_estimator=grpo" in err and "Traceback" not in err


def test_sampler_options_while_the_sampler_is_off_are_an_error(files):
    for overrides, given in (
        (("+priorl.sampler.retest_every=3",), "['retest_every']"),
        (("priorl.sampler.kind=prioritized-pass",), "['kind']"),
        (("priorl.sampler.enable=false", "priorl.sampler.reward_min=-1"), "['reward_min']"),
    ):
        with pytest.raises(ValueError) as error:
            check_config(config(files, *overrides, pieces=()))
        assert f"priorl.sampler options {given} are set, but the sampler is off" in str(error.value)
        assert "priorl.sampler.enable=true" in str(error.value)
    check_config(config(files, "priorl.sampler.reward_min=0", "priorl.sampler.seed=null", pieces=()))  # defaults


def test_with_both_pieces_off_the_run_is_verls_own(files, tmp_path, monkeypatch, capsys):
    off = ("priorl.replay.enable=false",)
    options = check_config(config(files, *off, pieces=()))
    assert options.sampler is None and options.replay is None
    trainer = build(config(files, *off, pieces=()))
    assert trainer.priorl_sampler is None and trainer.priorl_replay is None
    assert not isinstance(trainer.train_dataloader.sampler, PriorlProblemSampler)
    batch = next(iter(trainer.train_dataloader))
    step = ppo_batch([int(info["index"]) for info in batch["extra_info"]], 1, n=N)
    trainer.global_steps = 1
    output = trainer._update_actor(step)
    assert trainer.actor_rollout_wg.updates[-1]["responses"].shape[0] == len(step)  # the fresh batch only
    assert not any(key.startswith("priorl/") for key in output.meta_info["metrics"])
    # The command line says that priorl adds nothing, then runs verl.
    ran = []
    monkeypatch.setattr(main_ppo, "run", ran.append)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["main_ppo", *off, "hydra.run.dir=."])
    main()
    assert len(ran) == 1
    assert "priorl: note: priorl.replay.enable=false and priorl.sampler.enable=false" in capsys.readouterr().err
