"""Several processes (DDP on CPU, gloo) train exactly what one process with the global batch does.

The two-process runs are real: `python tests/test_distributed.py SPEC` (the worker at the bottom
of this file) builds the trainer with gans' own `build_trainer`, and Lightning's launcher starts
rank 1 by running the same command again. The one-process reference runs in the test process.

To compare them step by step, the one process must see, at every step, the union of both ranks'
batches and the concatenation of both ranks' latents:
- data: the two-process run uses the production GANDataModule, whose sampler Lightning replaces
  with a DistributedSampler; the reference builds the same shards with DistributedSampler itself
  (`union_of_shards`) and the test checks that the indices agree step by step;
- latents: `SharedLatents` draws z for (step, rank) from a fixed seed, so one process emulating
  two ranks draws the concatenation. It also records what the production stream
  (`GANModule.latents`) gave each rank, to show the ranks' own latents differ.
Images carry their index in the first pixel, so each rank's batches can be read back.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from gans.data import Images, paired_source
from gans.training.datamodule import GANDataModule
from gans.errors import GansError
from gans.training.module import GANModule
from gans.recipe import validate

REPO = Path(__file__).resolve().parent.parent
NUM_IMAGES = 16
PER_RANK_BATCH = 4
STEPS = 3  # generator steps; 16 images / 2 ranks / batch 4 = 2 steps an epoch, so 2 epochs
WORLD = 2
FEATURES = 64  # FID over a fixed random projection, in place of Inception's 2048 features

# As `gans train` does: checkpoints after a generator step's updates are what resume needs.
pytestmark = pytest.mark.filterwarnings("ignore:.*no pre-optimization state was saved")


# ----------------------------------------------------------------------------- shared pieces


def indexed_images(root, split: str, resolution: int) -> Images:
    """A dataset (by dotted path) of random images whose first pixel is their index."""
    pixels = torch.randint(0, 256, (NUM_IMAGES, 3, resolution, resolution), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    pixels[:, :, 0, 0] = torch.arange(NUM_IMAGES, dtype=torch.uint8)[:, None]
    return Images(pixels, None, "indexed random images")


@paired_source()
def indexed_pairs(root, split: str, resolution: int) -> Images:
    """indexed_images as targets, each with a random input image of its own (pix2pix)."""
    targets = indexed_images(root, split, resolution)
    inputs = torch.randint(0, 256, targets.pixels.shape, dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    return Images(targets.pixels, None, "indexed random pairs", conditions=inputs)


# pix2pix without its dropout (each rank would draw its own masks) and without BatchNorm.
PIX2PIX = {"loss": {"name": "pix2pix"},
           "model": {"generator": {"name": "unet", "width": 4, "dropout": 0.0, "norm": "instance"},
                     "discriminator": {"name": "patchgan", "width": 8, "layers": 1,
                                       "norm": "none"}},
           "data": {"name": "test_distributed.indexed_pairs", "resolution": 32, "channels": 3}}


def recipe_dict(batch_size: int, devices: int, strategy=None, loss=None) -> dict:
    trainer = {"accelerator": "cpu", "devices": devices, "enable_progress_bar": False}
    if strategy:
        trainer["strategy"] = strategy
    return {
        "loss": loss or {"name": "non-saturating"},
        "name": "ddp", "seed": 3,
        # No BatchNorm anywhere: per-rank batch statistics would differ from the global batch's
        # (SyncBatchNorm fixes that on GPUs; it does not run on CPU tensors).
        "model": {"generator": {"name": "user_models.TinyGenerator", "latent_dim": 4},
                  "discriminator": {"name": "dcgan", "width": 8, "norm": "none"}},
        "data": {"name": "test_distributed.indexed_images", "resolution": 16, "channels": 3},
        "train": {"steps": STEPS, "batch_size": batch_size, "ema": 0.9, "log_every": 1,
                  "checkpoint_every": STEPS, "sample_every": STEPS, "sample_grid": 4},
        "trainer": trainer,
        "metrics": {"fid_every": STEPS, "fid_num_fake": 20, "fid_num_real": NUM_IMAGES,
                    "fid_batch_size": 8},
    }


class RandomFeatures(nn.Module):
    """A fixed random projection standing in for Inception: FID's arithmetic, cheaply."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3 * 16 * 16, FEATURES)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(self.proj.weight.shape,
                                               generator=torch.Generator().manual_seed(5)) / 16)
            self.proj.bias.zero_()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # Any size in, 16 px seen (adaptive pooling of 16 px to 16 px is the identity).
        small = nn.functional.adaptive_avg_pool2d(images.float(), 16)
        return torch.tanh(self.proj(small.flatten(1) / 255.0))


def use_random_features(patch) -> None:
    """FIDTracker with RandomFeatures; `patch(obj, name, value)` is setattr or monkeypatch's."""
    import gans.evaluation.fid
    import gans.evaluation.inception
    import gans.training.callbacks

    patch(gans.training.callbacks, "resolve_inception_weights",
          lambda path=None: SimpleNamespace(sha256="random-features-for-tests", path=None))
    patch(gans.evaluation.inception, "make_extractor", lambda weights: RandomFeatures())
    patch(gans.evaluation.fid.FeaturesAsInput, "num_features", FEATURES)


class SharedLatents(GANModule):
    """z for (step, rank) from a fixed seed: a process standing in for `emulated_ranks` ranks
    draws their concatenation. Records the rank's own production latents and a draw of the
    global RNG, to show what Lightning's seeding and GANModule.latents do per rank."""

    emulated_ranks = 1

    def on_train_start(self) -> None:
        super().on_train_start()
        self.global_rng_draw = torch.randn(4)  # Lightning has seeded every rank alike
        self.own_latents = None

    def latents(self, n: int) -> torch.Tensor:
        if self.own_latents is None:
            self.own_latents = super().latents(n)
        ranks = [self.global_rank] if self.trainer.world_size > 1 else range(self.emulated_ranks)
        step = self.trainer.global_step
        return torch.cat([torch.randn(n // len(ranks), self.generator.latent_dim,
                                      generator=torch.Generator().manual_seed(1000 * step + r))
                          for r in ranks]).to(self.device)


class Recorder(pl.Callback):
    """The image indices of every batch, with the epoch they came in."""

    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.seen.append((trainer.current_epoch, batch[0][:, 0, 0, 0].tolist()))


def union_of_shards(seed: int, steps: int) -> list:
    """The batches one process must see to match WORLD ranks: at each step, rank 0's batch
    then rank 1's, each from Lightning's DistributedSampler(shuffle=True, seed), by epoch."""
    per_epoch = math.ceil(NUM_IMAGES / WORLD) // PER_RANK_BATCH
    batches = []
    for step in range(steps):
        epoch, t = divmod(step, per_epoch)
        union = []
        for rank in range(WORLD):
            sampler = DistributedSampler(range(NUM_IMAGES), num_replicas=WORLD, rank=rank,
                                         shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
            union += list(sampler)[t * PER_RANK_BATCH:(t + 1) * PER_RANK_BATCH]
        batches.append(union)
    return batches


class UnionOfShards(GANDataModule):
    def train_dataloader(self) -> DataLoader:
        tensors = [self.images.pixels]
        if self.images.conditions is not None:  # paired data: the inputs come along
            tensors.append(self.images.conditions)
        return DataLoader(TensorDataset(*tensors),
                          batch_sampler=union_of_shards(self.seed, STEPS))


def seeded_module(recipe) -> SharedLatents:
    """As `gans train` builds it: seeded, so every process starts from the same weights."""
    pl.seed_everything(recipe.seed, workers=True, verbose=False)
    return SharedLatents(recipe.to_dict())


def train_once(recipe, module, datamodule, out: Path):
    """gans' own Trainer for `recipe` (its strategy choice included), plus the Recorder."""
    from pytorch_lightning.loggers import TensorBoardLogger

    from gans.training.run import build_trainer

    logger = TensorBoardLogger(save_dir=str(out), name=recipe.name, default_hp_metric=False)
    trainer = build_trainer(recipe, logger)
    recorder = Recorder()
    trainer.callbacks.append(recorder)
    trainer.fit(module, datamodule=datamodule)
    return trainer, recorder


def fid_of(trainer, module, recipe) -> dict:
    """FIDTracker.evaluate on `module`'s sampling generator, with what each rank held."""
    from gans.training.callbacks import FIDTracker

    tracker = FIDTracker(recipe)
    tracker.setup(trainer, module, "fit")
    real = int(tracker.fid.real_features_num_samples)
    fakes = []
    update = tracker.fid.update
    tracker.fid.update = lambda x, real: (fakes.append(len(x)) if not real else None,
                                          update(x, real=real))
    value = tracker.evaluate(module, trainer.world_size, trainer.global_rank)
    return {"fid": float(value), "real_on_this_rank": real, "fakes_on_this_rank": sum(fakes)}


def floats(state: dict) -> dict:
    return {k: v for k, v in state.items() if v.is_floating_point()}


# ----------------------------------------------------------------------------- launching


def clean_env() -> dict:
    """This environment without any launcher's variables: the test picks its own world."""
    launcher_vars = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK",
                     "NODE_RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE", "PL_GLOBAL_SEED",
                     "OMP_NUM_THREADS")
    env = {k: v for k, v in os.environ.items()
           if k not in launcher_vars and not k.startswith(("SLURM_", "TORCHELASTIC_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests"),
                                         env.get("PYTHONPATH", "")])
    return env


def run_processes(command: list, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `command` (which launches its own ranks) in a session of its own, so a hang kills
    every rank it started, and nothing else. Every rank's output comes back: the ranks that
    Lightning starts inherit the pipes, so this returns once all of them have closed them."""
    proc = subprocess.Popen(command, cwd=cwd, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(command)} hung for {timeout}s:\n{out[-3000:]}\n{err[-6000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def ended_cleanly(done: subprocess.CompletedProcess) -> None:
    """Rank 0 exited 0, and no rank printed a traceback or aborted on its way out."""
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    for sign in ("Traceback", "terminate called", "core dumped"):
        assert sign not in done.stderr, done.stderr[-6000:]


def two_process_run(tmp_path: Path, recipe: dict) -> list:
    tmp_path.mkdir(parents=True, exist_ok=True)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"out": str(tmp_path), "recipe": recipe}))
    done = run_processes([sys.executable, str(Path(__file__).resolve()), str(spec)], tmp_path)
    ended_cleanly(done)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


# ----------------------------------------------------------------------------- the tests


# Every objective joins this test: its phases must average over ranks like the classic ones.
@pytest.mark.parametrize("strategy, loss", [
    (None, None), ("ddp_find_unused_parameters_true", None),
    (None, {"name": "rpgan", "gamma": 1.0}),
    (None, PIX2PIX),
], ids=["default-ddp_gan", "ddp_find_unused_parameters_true", "rpgan-r1-r2-ddp_gan",
        "pix2pix-ddp_gan"])
def test_two_processes_train_what_one_process_with_the_global_batch_trains(
        tmp_path, monkeypatch, strategy, loss):
    def recipe_for(batch_size, devices, strategy=None):
        if loss is PIX2PIX:  # a paired model: its own networks and data
            return {**recipe_dict(batch_size, devices, strategy), **PIX2PIX}
        return recipe_dict(batch_size, devices, strategy, loss)

    paired = loss is PIX2PIX
    ranks = two_process_run(tmp_path / "two", recipe_for(PER_RANK_BATCH, WORLD, strategy))
    expected_strategy = "GANDDPStrategy" if strategy is None else "DDPStrategy"
    assert [r["strategy"] for r in ranks] == [expected_strategy] * WORLD

    # One process, batch 2b, the union of the shards and the concatenated latents.
    use_random_features(monkeypatch.setattr)
    recipe = validate(recipe_for(PER_RANK_BATCH * WORLD, 1))
    module = seeded_module(recipe)
    module.emulated_ranks = WORLD
    initial = {k: v.clone() for k, v in floats(module.state_dict()).items()}
    trainer, recorder = train_once(recipe, module,
                                   UnionOfShards(recipe.data, recipe.train.batch_size,
                                                 recipe.seed), tmp_path / "one")
    assert module.g_step == STEPS and all(r["g_step"] == STEPS for r in ranks)

    # Data: each rank drew its own shard, reshuffled every epoch; together, what one process saw.
    for step, (epoch, indices) in enumerate(recorder.seen):
        assert sorted(ranks[0]["seen"][step][1] + ranks[1]["seen"][step][1]) == sorted(indices)
        assert ranks[0]["seen"][step][0] == ranks[1]["seen"][step][0] == step // 2
    for rank in ranks:
        epoch0 = [i for e, batch in rank["seen"] if e == 0 for i in batch]
        epoch1 = [i for e, batch in rank["seen"] if e == 1 for i in batch]
        assert epoch1 != epoch0[:len(epoch1)]  # a new order in the new epoch
    shards = [{i for e, batch in rank["seen"] if e == 0 for i in batch} for rank in ranks]
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(NUM_IMAGES))

    # Latents: Lightning seeds every rank alike; GANModule's own stream differs per rank.
    # (A paired model draws none: its fakes come from the batch's own inputs.)
    assert torch.equal(ranks[0]["global_rng_draw"], ranks[1]["global_rng_draw"])
    if paired:
        assert ranks[0]["own_latents"] is None and ranks[1]["own_latents"] is None
    else:
        assert not torch.allclose(ranks[0]["own_latents"], ranks[1]["own_latents"])

    # Weights: both ranks identical, and equal to the one process (G, D and the EMA generator).
    states = [floats(rank["state"]) for rank in ranks]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    reference = floats(module.state_dict())
    assert set(reference) == set(states[0]) and any(k.startswith("g_ema.") for k in reference)
    worst = max((states[0][k] - reference[k]).abs().max().item() for k in reference)
    assert worst < 1e-5, f"largest difference from one process: {worst:.2e}"
    for network in ("generator.", "discriminator.", "g_ema."):  # and training moved them all
        assert any(not torch.equal(reference[k], initial[k]) for k in reference
                   if k.startswith(network))

    # Logged losses are means over ranks: what the one process logged.
    for key in ("loss/generator", "loss/discriminator", "D/real", "D/fake"):
        values = [rank["logged"][key] for rank in ranks]
        assert values[0] == values[1]
        assert values[0] == pytest.approx(float(trainer.callback_metrics[key]), abs=1e-5), key

    # FID: real features on rank 0 only, fakes split over ranks, and the value of one process.
    # A paired model translates the reference split's inputs: no more fakes than it has.
    fids = [rank["fid"] for rank in ranks]
    fakes = min(recipe.metrics.fid_num_fake, NUM_IMAGES) if paired else recipe.metrics.fid_num_fake
    assert [f["real_on_this_rank"] for f in fids] == [NUM_IMAGES, 0]
    assert [f["fakes_on_this_rank"] for f in fids] == [fakes // 2, fakes // 2]
    assert fids[0]["fid"] == fids[1]["fid"]
    assert all(rank["logged"]["fid"] == ranks[0]["logged"]["fid"] for rank in ranks)
    module.load_state_dict(ranks[0]["state"])  # the very weights the two processes evaluated
    alone = fid_of(SimpleNamespace(is_global_zero=True, world_size=1, global_rank=0), module,
                   recipe)
    assert alone["real_on_this_rank"] == NUM_IMAGES and alone["fakes_on_this_rank"] == fakes
    assert fids[0]["fid"] == pytest.approx(alone["fid"], rel=1e-6), (fids[0], alone)


def test_batchnorm_statistics_stay_identical_across_ranks(tmp_path):
    raw = recipe_dict(PER_RANK_BATCH, WORLD)
    raw["model"] = {"generator": {"name": "dcgan", "latent_dim": 4, "width": 8},
                    "discriminator": {"name": "dcgan", "width": 8, "norm": "batch"}}
    ranks = two_process_run(tmp_path, raw)
    states = [floats(rank["state"]) for rank in ranks]
    statistics = [k for k in states[0] if k.endswith(("running_mean", "running_var"))]
    assert any(k.startswith("generator.") for k in statistics)
    assert any(k.startswith("discriminator.") for k in statistics)
    assert any(k.startswith("g_ema.") for k in statistics)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert any(states[0][k].abs().sum() > 0 for k in statistics if k.endswith("running_mean"))


def test_a_learning_rate_decay_on_the_clock_stays_identical_across_ranks(tmp_path):
    # Each rank's clock starts on its own; a rate from each would part the weights.
    raw = recipe_dict(PER_RANK_BATCH, WORLD)
    unbounded = 10 ** 6
    raw["train"].update(steps=unbounded, checkpoint_every=unbounded, sample_every=unbounded)
    raw["metrics"]["fid_every"] = unbounded
    raw["optim"] = {"schedule": "linear", "final_lr_scale": 0.1}
    raw["trainer"]["max_time"] = "00:00:00:02"
    ranks = two_process_run(tmp_path, raw)
    assert 1 < ranks[0]["g_step"] == ranks[1]["g_step"] < unbounded  # the clock stopped both
    states = [floats(rank["state"]) for rank in ranks]
    differ = [k for k in states[0] if not torch.equal(states[0][k], states[1][k])]
    assert not differ, differ


def test_stylegan_lite_with_ada_r1_and_path_length_stays_identical_across_ranks(tmp_path):
    raw = recipe_dict(PER_RANK_BATCH, WORLD)
    small = {"channel_base": 64, "channel_max": 8}
    raw["model"] = {"generator": {"name": "stylegan-lite", "latent_dim": 8, "w_dim": 8, **small},
                    "discriminator": {"name": "stylegan-lite", **small}}
    raw["loss"] = {"r1_gamma": 1.0, "r1_every": 2, "pl_weight": 2.0, "pl_every": 2}
    raw["augment"] = {"policy": ["color", "translation", "cutout"], "p": 0.5, "ada_target": 0.6,
                      "ada_interval": 2, "ada_kimg": 0.01}
    ranks = two_process_run(tmp_path, raw)
    states = [floats(rank["state"]) for rank in ranks]
    differ = [k for k in states[0] if not torch.equal(states[0][k], states[1][k])]
    assert not differ, differ
    # Each of these is updated from a rank's own latents or data, then made common.
    for key in ("generator.w_avg", "g_ema.module.w_avg", "objective.pl_mean"):
        assert states[0][key].abs().sum() > 0, key
    assert states[0]["augment.p"] != 0.5  # ADA moved p, by the same step on both ranks


def test_gans_train_on_two_processes_writes_one_run(tmp_path, image_folder):
    from conftest import tiny_recipe

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(tmp_path, image_folder, steps=4)))
    out = tmp_path / "runs"
    done = run_processes([sys.executable, "-m", "gans", "train", str(recipe), "--out", str(out),
                          "--set", "trainer.devices=2", "--set", "trainer.accelerator=cpu"],
                         cwd=tmp_path)
    ended_cleanly(done)
    run = out / "tiny" / "version_0"
    assert sorted(p.name for p in (out / "tiny").iterdir()) == ["version_0"]
    assert str(run) in done.stdout  # printed by each rank
    assert "version_1" not in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "runs", "tiny.yaml"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000002.png",
                                                                   "step_0000004.png"]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert yaml.safe_load((run / "recipe.yaml").read_text())["trainer"]["devices"] == 2
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 8  # 4 generator steps of two optimizer steps
    assert not any(k.startswith(("module.", "_forward_module.")) for k in ckpt["state_dict"])
    assert ckpt["state_dict"]["g_ema.n_averaged"].item() == 4


def test_several_devices_choose_ddp_gan_unless_told(tmp_path, image_folder):
    from pytorch_lightning.loggers import TensorBoardLogger
    from pytorch_lightning.strategies import DDPStrategy, SingleDeviceStrategy

    from conftest import tiny_recipe
    from gans.training.run import GANDDPStrategy, build_trainer

    def strategy_for(**trainer):
        raw = tiny_recipe(tmp_path, image_folder)
        raw["trainer"].update(trainer)
        logger = TensorBoardLogger(save_dir=str(tmp_path / "runs"), name="t")
        return build_trainer(validate(raw), logger).strategy

    assert isinstance(strategy_for(devices=1), SingleDeviceStrategy)
    assert type(strategy_for(devices=2)) is GANDDPStrategy
    assert type(strategy_for(devices=2, num_nodes=2)) is GANDDPStrategy
    assert type(strategy_for(devices=2, strategy="ddp_gan")) is GANDDPStrategy
    explicit = strategy_for(devices=2, strategy="ddp_find_unused_parameters_true")
    assert type(explicit) is DDPStrategy
    for plain in ("ddp", "ddp_spawn"):
        with pytest.raises(GansError, match="leave trainer.strategy unset"):
            strategy_for(devices=2, strategy=plain)


def test_every_rank_needs_a_whole_batch(tmp_path, image_folder):
    from conftest import tiny_recipe

    recipe = validate(tiny_recipe(tmp_path, image_folder, batch_size=16))
    datamodule = GANDataModule(recipe.data, 16)
    datamodule.setup("fit")  # 40 images: one process is fine
    datamodule.trainer = SimpleNamespace(world_size=4)
    with pytest.raises(GansError, match=r"train.batch_size=16 x 4 processes"):
        datamodule.setup("fit")


# ----------------------------------------------------------------------------- the worker


def worker(spec_path: Path) -> None:
    """One rank of the two-process run (Lightning starts rank 1 with this same command)."""
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out"])
    use_random_features(setattr)
    recipe = validate(spec["recipe"])
    module = seeded_module(recipe)
    trainer, recorder = train_once(recipe, module, GANDataModule(recipe.data,
                                                                 recipe.train.batch_size,
                                                                 recipe.seed), out)
    fid = fid_of(trainer, module, recipe)  # after fit, on every rank: the group is still up
    torch.save({"strategy": type(trainer.strategy).__name__, "g_step": module.g_step,
                "seen": recorder.seen, "state": module.state_dict(),
                "own_latents": module.own_latents, "global_rng_draw": module.global_rng_draw,
                "logged": {k: float(v) for k, v in trainer.callback_metrics.items()},
                "fid": fid}, out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
