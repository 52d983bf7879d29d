"""The Python API (gans/api.py and the names `import gans` offers): the generator handle,
train -> Run, recipes and their errors, and the Lightning parts under a Trainer of one's own."""

import os
import pydoc
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from conftest import random_images, tiny_recipe
from pytorch_lightning.loggers import CSVLogger

import gans
from gans.cli import main
from gans.training.clock import Clock

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- the package


def test_import_gans_loads_neither_torch_nor_lightning():
    code = ("import sys, gans; print(gans.__version__); print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('torch', 'pytorch_lightning', 'lightning')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert out.splitlines() == [gans.__version__, "[]"]


def test_the_surface_is_listed_documented_and_resolves():
    public = [name for name in gans.__all__ if name != "__version__"]
    assert {"load", "train", "evaluate", "benchmark", "Recipe", "Run", "GANModule",
            "GANDataModule", "GansError", "RecipeError", "CheckpointError"} <= set(public)
    for name in public:
        value = getattr(gans, name)
        assert value.__doc__, f"gans.{name} has no docstring"
        assert name in dir(gans)
    assert issubclass(gans.RecipeError, gans.GansError)
    assert issubclass(gans.CheckpointError, gans.GansError)
    assert issubclass(gans.TrainingDiverged, gans.GansError)
    text = pydoc.render_doc(gans, renderer=pydoc.plaintext)  # what help(gans) shows
    for shown in ("load(path", "train(recipe", "evaluate(checkpoint", "class GANModule",
                  "from_recipe", "class LoadedGenerator", "class Run"):
        assert shown in text
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gans.nope


# ----------------------------------------------------------------------------- own Trainer


class GeneratorSteps(pl.Callback):
    """A callback of the user's own: the generator steps it saw end."""

    def __init__(self):
        self.seen = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.g_step > (self.seen[-1] if self.seen else 0):
            self.seen.append(pl_module.g_step)


@pytest.fixture(scope="module")
def own_trainer_run(tmp_path_factory):
    """5 generator steps with n_critic=2 under a plain Trainer, CSVLogger and a callback."""
    tmp = tmp_path_factory.mktemp("own")
    raw = tiny_recipe(tmp, random_images(tmp / "images", 24), steps=5, n_critic=2, ema=0.9)
    module = gans.GANModule.from_recipe(raw)
    data = gans.GANDataModule.from_recipe(raw)
    steps = GeneratorSteps()
    trainer = pl.Trainer(max_steps=Clock.of(module.recipe).global_step_at(5),
                         logger=CSVLogger(tmp / "logs", name="mine"), callbacks=[steps],
                         accelerator="cpu", enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=data)
    checkpoint = tmp / "mine.ckpt"
    trainer.save_checkpoint(checkpoint)
    return module, trainer, steps, checkpoint, raw


def test_a_plain_trainer_trains_the_module_then_gans_load_samples(own_trainer_run):
    module, trainer, steps, checkpoint, _ = own_trainer_run
    assert module.g_step == 5 and steps.seen == [1, 2, 3, 4, 5]
    assert trainer.global_step == 15  # (n_critic + 1) optimizer steps per generator step
    metrics = (Path(trainer.logger.log_dir) / "metrics.csv").read_text().splitlines()
    assert "loss/generator" in metrics[0] and len(metrics) > 1

    G = gans.load(checkpoint)
    assert G.weights == "ema" and G.latent_dim == 8 and G.classes == () and G.resolution == 16
    images = G.sample(4, seed=3)
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.float32
    assert images.abs().max() <= 1
    assert torch.equal(images, G.sample(4, seed=3))
    assert not torch.equal(images, G.sample(4, seed=4))
    with torch.no_grad():  # the handle samples the module's EMA generator
        z = torch.randn(2, 8)
        assert torch.allclose(G(z), module.sampling_generator.eval()(z))
    raw_weights = gans.load(checkpoint, use_ema=False)
    assert raw_weights.weights == "raw"


def test_load_from_checkpoint_restores_the_module(own_trainer_run):
    module, _, _, checkpoint, raw = own_trainer_run
    again = gans.GANModule.load_from_checkpoint(checkpoint)
    assert again.recipe == module.recipe and again.class_names == []
    mine, theirs = module.state_dict(), again.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k].cpu(), theirs[k]) for k in mine)


def test_load_from_checkpoint_refuses_foreign_code_without_trust(own_trainer_run, tmp_path):
    _, _, _, checkpoint, _ = own_trainer_run
    ckpt = torch.load(checkpoint, weights_only=True)
    ckpt["hyper_parameters"]["recipe"]["model"]["generator"]["name"] = "user_models.Unknown"
    foreign = tmp_path / "foreign.ckpt"
    torch.save(ckpt, foreign)
    for load in (gans.GANModule.load_from_checkpoint, gans.load):
        with pytest.raises(gans.CheckpointError, match="--trust-checkpoint"):
            load(foreign)
    with pytest.raises(gans.CheckpointError, match="not found"):
        gans.load(tmp_path / "missing.ckpt")


def test_the_handle_writes_files_with_provenance_and_exports(own_trainer_run, tmp_path):
    _, _, _, checkpoint, _ = own_trainer_run
    G = gans.load(checkpoint)
    grid = G.grid(6, seed=1, nrow=3)
    assert grid.size == (3 * 18 + 2, 2 * 18 + 2)  # make_grid's 2-pixel padding
    pictures = G.sample(3, seed=1, pil=True)
    assert len(pictures) == 3 and pictures[0].size == (16, 16)
    (path,) = G.save(tmp_path / "grid.png", 6, seed=1)
    info = gans.inspect(path)
    assert info["seeds"] == "1" and info["weights"] == "ema" and info["kind"] == "grid"
    frames = G.interpolate([0, 1], frames=3)
    assert frames.shape == (6, 3, 16, 16)
    assert torch.equal(frames[0], G.sample(1, seed=0)[0])
    with pytest.raises(gans.GansError, match="per-layer styles"):
        G.style_mix([1, 2])
    with pytest.raises(gans.GansError, match="not class-conditional"):
        G.sample(2, class_name="sneaker")
    with pytest.raises(gans.GansError, match="n must be at least 1"):
        G.sample(0)
    assert gans.export(checkpoint, tmp_path / "G.safetensors") == "ema"
    exported = gans.load(tmp_path / "G.safetensors")
    assert torch.equal(exported.sample(4, seed=3), G.sample(4, seed=3))
    assert "# " in gans.card(checkpoint)


# ----------------------------------------------------------------------------- conditional


@pytest.fixture(scope="module")
def conditional_style_checkpoint(tmp_path_factory):
    """An untrained class-conditional stylegan-lite, saved as a checkpoint (no data needed)."""
    raw = {"name": "cond", "model": {
        "generator": {"name": "stylegan-lite", "latent_dim": 16, "w_dim": 16,
                      "channel_base": 128, "channel_max": 16},
        "discriminator": {"name": "stylegan-lite", "channel_base": 128, "channel_max": 16}},
        "data": {"name": "fashion-mnist", "resolution": 16, "channels": 1, "conditional": True}}
    module = gans.GANModule.from_recipe(raw)
    path = tmp_path_factory.mktemp("cond") / "cond.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    return path


def test_classes_by_name_and_style_mixing_on_a_conditional_style_generator(
        conditional_style_checkpoint):
    G = gans.load(conditional_style_checkpoint)
    assert len(G.classes) == 10 and G.classes[7] == "Sneaker"
    by_name = G.sample(3, seed=0, class_name="sneaker")
    assert torch.equal(by_name, G.sample(3, seed=0, labels=[7, 7, 7]))
    assert torch.equal(G.sample(3, seed=0, class_name=7), by_name)
    assert G.grid(seed=0, per_class=2).size == (2 * 18 + 2, 10 * 18 + 2)
    assert G.style_mix([1, 2, 3], class_name="bag", pil=False).shape == (16, 1, 16, 16)
    assert G.sample(2, truncation=0.5).shape == (2, 1, 16, 16)
    with pytest.raises(gans.GansError, match="class-conditional: add --class"):
        G.interpolate([0, 1])
    with pytest.raises(gans.GansError, match="not a class of this checkpoint"):
        G.sample(1, class_name="dragon")
    with pytest.raises(gans.GansError, match="labels: expected 2 class indices"):
        G.sample(2, labels=[1, 10])


# ----------------------------------------------------------------------------- train, recipes


def test_train_returns_the_run_and_resumes_it(tmp_path):
    raw = tiny_recipe(tmp_path, random_images(tmp_path / "images", 16), steps=2,
                      checkpoint_every=2, sample_every=2)
    out = tmp_path / "runs"
    run = gans.train(raw, out, overrides=["train.log_every=1"])
    assert run.run_dir.parent == out / "tiny" and run.last_checkpoint.is_file()
    assert run.best_checkpoint is None and run.fid_curve() == []
    assert run.recipe.train.log_every == 1
    opened = gans.Run.open(run.run_dir)
    assert opened.recipe.train.steps == 2 and opened.load().latent_dim == 8
    longer = gans.train(resume=run.run_dir, overrides=["train.steps=3"])
    assert longer.run_dir == run.run_dir and longer.recipe.train.steps == 3
    assert torch.load(run.last_checkpoint, weights_only=True)["global_step"] == 6
    with pytest.raises(gans.GansError, match="drop RECIPE"):
        gans.train(raw, out, resume=run.run_dir)


def test_recipe_errors_are_caught_apart_and_nothing_is_written(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, tmp_path)))
    recipe = gans.Recipe.load(path, overrides=["train.steps=7"])
    assert recipe.train.steps == 7 and recipe.name == "tiny"
    assert gans.Recipe.load(path, overrides=["train.steps=7"]) == recipe
    assert yaml.safe_load(recipe.to_yaml()) == recipe.to_dict()
    with pytest.raises(gans.RecipeError, match="unknown key 'train.stepz'"):
        gans.Recipe.load(path, overrides=["train.stepz=5"])
    with pytest.raises(gans.RecipeError, match="expected key.path=value"):
        gans.GANModule.from_recipe(recipe, overrides=["nonsense"])
    with pytest.raises(gans.RecipeError, match="not found"):
        gans.Recipe.load(tmp_path / "missing.yaml")
    out = tmp_path / "runs"
    with pytest.raises(gans.RecipeError):
        gans.train(path, out, overrides=["train.steps=-1"])
    assert not out.exists()
    # The command line prints the same one-line message.
    assert main(["recipe", str(path), "--set", "train.stepz=5"]) == 2


def test_the_other_verbs(tmp_path, capsys):
    assert "dcgan" in gans.registered()["generators"]
    assert gans.benchmark(REPO / "recipes" / "bench" / "smoke.yaml", tmp_path,
                          dry_run=True) is None
    assert "smoke" in capsys.readouterr().out
    assert not (tmp_path / "smoke").exists()
    with pytest.raises(gans.GansError, match="unknown metric 'fidd'"):
        gans.evaluate(tmp_path / "any.ckpt", metrics=["fidd"])
    with pytest.raises(gans.GansError, match="is a folder"):
        gans.evaluate(tmp_path / "any.ckpt", json_path=tmp_path)
    assert gans.inspect(random_images(tmp_path / "plain", 1) / "0.png") == {}
