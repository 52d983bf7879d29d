import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """The test session derives data into its own cache, never the user's.

    GANS_TEST_CACHE_DIR keeps one across sessions (the converted Inception weights, extracted
    Fashion-MNIST) when iterating locally.
    """
    previous = os.environ.get("GANS_CACHE_DIR")
    os.environ["GANS_CACHE_DIR"] = os.environ.get("GANS_TEST_CACHE_DIR") or str(
        tmp_path_factory.getbasetemp() / "gans-cache")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    yield
    if previous is None:
        os.environ.pop("GANS_CACHE_DIR", None)
    else:
        os.environ["GANS_CACHE_DIR"] = previous


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """A nested folder of small random RGB images, plus files that are not images."""
    root = tmp_path / "images"
    generator = torch.Generator().manual_seed(0)
    for i in range(40):
        sub = root / f"class{i % 3}" / ("deep" if i % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        size = (20, 20) if i % 5 else (24, 18)
        pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=generator,
                               dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(sub / f"img{i}.png")
    (root / "README.txt").write_text("not an image")
    (root / "class0" / "notes.json").write_text("{}")
    return root


def write_recipe(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def tiny_recipe(tmp_path: Path, data_root: Path, **train) -> dict:
    """A recipe small enough to train in seconds on image_folder data."""
    return {
        "name": "tiny",
        "seed": 1,
        "model": {"generator": {"name": "dcgan", "latent_dim": 8, "width": 8},
                  "discriminator": {"name": "dcgan", "width": 8}},
        "data": {"name": "folder", "root": str(data_root), "resolution": 16, "channels": 3},
        "train": {"steps": 4, "batch_size": 8, "checkpoint_every": 2, "sample_every": 2,
                  "sample_grid": 4, "log_every": 1, **train},
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
    }


def assert_resuming_is_one_run(tmp_path: Path, raw: dict, stop_at: int) -> Path:
    """Trains the recipe `raw` straight, and again stopped after `stop_at` generator steps and
    extended with `--resume` to its `train.steps`: the weights must end the same, bit for bit.
    Returns the resumed run's directory."""
    from gans.cli import main

    recipe = tmp_path / "resumed.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["train", str(recipe), "--out", str(tmp_path / "straight")]) == 0
    straight = torch.load(tmp_path / "straight" / raw["name"] / "version_0" / "checkpoints" /
                          "last.ckpt", weights_only=True)["state_dict"]
    assert main(["train", str(recipe), "--out", str(tmp_path / "stopped"),
                 "--set", f"train.steps={stop_at}"]) == 0
    run_dir = tmp_path / "stopped" / raw["name"] / "version_0"
    assert main(["train", "--resume", str(run_dir),
                 "--set", f"train.steps={raw['train']['steps']}"]) == 0
    resumed = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    differ = [k for k, v in straight.items() if not torch.equal(v, resumed[k])]
    assert not differ, differ
    return run_dir


KILL_AT_STEP = """
import os, signal, sys
from gans.training.module import GANModule

original = GANModule.on_train_batch_end


def kill_at(self, *args):
    original(self, *args)
    if self.g_step == {step}:  # mid-run, after the checkpoint before it, as a crash would
        os.kill(os.getpid(), signal.SIGKILL)


GANModule.on_train_batch_end = kill_at
from gans.cli import main
sys.exit(main(["train", {recipe!r}, "--out", {out!r}]))
"""


def straight_and_killed_then_resumed(tmp_path: Path, raw: dict, kill_at: int) -> tuple:
    """Trains the recipe `raw` straight, and again killed (SIGKILL) after `kill_at` generator
    steps and resumed with `--resume` alone. Returns (the straight run's last checkpoint, the
    global step the killed run had saved, the resumed run's last checkpoint)."""
    import signal
    import subprocess
    import sys

    from gans.cli import main

    recipe = tmp_path / "killed.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["train", str(recipe), "--out", str(tmp_path / "straight")]) == 0
    straight = torch.load(tmp_path / "straight" / raw["name"] / "version_0" / "checkpoints" /
                          "last.ckpt", weights_only=True)
    out = tmp_path / "killed"
    done = subprocess.run([sys.executable, "-c", KILL_AT_STEP.format(
        step=kill_at, recipe=str(recipe), out=str(out))], capture_output=True, text=True,
        timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    last = out / raw["name"] / "version_0" / "checkpoints" / "last.ckpt"
    saved_step = torch.load(last, weights_only=True)["global_step"]
    assert main(["train", "--resume", str(last.parent.parent)]) == 0
    return straight, saved_step, torch.load(last, weights_only=True)


def random_images(root: Path, count: int, size: int = 16, subfolders: int = 0) -> Path:
    """`count` random RGB PNGs of `size` px under `root` (spread over `subfolders` if any)."""
    generator = torch.Generator().manual_seed(0)
    for i in range(count):
        folder = root / f"c{i % subfolders}" if subfolders else root
        folder.mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (size, size, 3), generator=generator, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One 20-step run on random 16x16 images, shared by the tests that need a checkpoint."""
    from gans.cli import main

    tmp = tmp_path_factory.mktemp("run")
    root = random_images(tmp / "images", 48, subfolders=4)
    raw = tiny_recipe(tmp, root, steps=20, checkpoint_every=10, sample_every=10)
    recipe_path = tmp / "tiny.yaml"
    recipe_path.write_text(yaml.safe_dump(raw))
    out = tmp / "runs"
    assert main(["train", str(recipe_path), "--out", str(out), "--set", "train.ema=0.9"]) == 0
    (run_dir,) = (out / "tiny").iterdir()
    return run_dir


# ----------------------------------------------------------------------------- the explorer
# Tiny runs for the explorer's tests (tests/test_serve_*.py), trained once per session: a DCGAN
# on random images (with sample grids over training and, written beside its log, a FID curve)
# and a class-conditional StyleGAN-lite on Fashion-MNIST (truncation, classes, style mixing).

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def train_recipe(raw: dict, folder: Path, runs: Path) -> Path:
    """`gans train` on a recipe given as a dict (written into `folder`); the run directory."""
    from gans.cli import main

    recipe = folder / f"{raw['name']}.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["train", str(recipe), "--out", str(runs)]) == 0
    (run_dir,) = (runs / raw["name"]).iterdir()
    return run_dir


SERVE_TRAINER = {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False}


def serve_train(steps: int, ema: float) -> dict:
    """The train section of the explorer's tiny runs: a checkpoint and a grid at the end."""
    return {"steps": steps, "batch_size": 8, "checkpoint_every": steps, "sample_every": steps,
            "sample_grid": 4, "log_every": 1, "ema": ema}


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory) -> Path:
    """runs/dcgan-tiny/version_0 and, where Fashion-MNIST is installed,
    runs/sg-cond/version_0."""
    tmp = tmp_path_factory.mktemp("serve")
    runs = tmp / "runs"
    images = random_images(tmp / "images", 32)
    dcgan = train_recipe({
        "name": "dcgan-tiny", "seed": 1,
        "model": {"generator": {"name": "dcgan", "latent_dim": 8, "width": 8},
                  "discriminator": {"name": "dcgan", "width": 8}},
        "data": {"name": "folder", "root": str(images), "resolution": 16, "channels": 3},
        "train": {"steps": 6, "batch_size": 8, "checkpoint_every": 3, "sample_every": 2,
                  "sample_grid": 4, "log_every": 1, "ema": 0.9},
        "trainer": SERVE_TRAINER, "metrics": {"fid_every": 0}}, tmp, runs)
    # A FID curve as the FID callback logs it, without running Inception in a test.
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(dcgan))
    for step, fid in ((2, 300.0), (4, 250.5), (6, 260.0)):
        writer.add_scalar("fid", fid, step)
    writer.add_text("fid/protocol", "FID test-protocol: 8 generated vs 32 real", 6)
    writer.close()
    if FASHION_MNIST.exists():
        train_recipe({
            "name": "sg-cond", "seed": 2,
            "model": {"generator": {"name": "stylegan-lite", "latent_dim": 16, "w_dim": 16,
                                    "channel_base": 128, "channel_max": 16},
                      "discriminator": {"name": "stylegan-lite", "channel_base": 128,
                                        "channel_max": 16}},
            "data": {"name": "fashion-mnist", "resolution": 16, "channels": 1, "limit": 256,
                     "conditional": True},
            "train": serve_train(4, ema=0.9),
            "trainer": SERVE_TRAINER, "metrics": {"fid_every": 0}}, tmp, runs)
    return runs


@pytest.fixture(scope="session")
def dcgan_ckpt(serve_runs) -> str:
    return "runs/dcgan-tiny/version_0/checkpoints/last.ckpt"


@pytest.fixture(scope="session")
def style_ckpt(serve_runs) -> str:
    if not (serve_runs / "sg-cond").is_dir():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return "runs/sg-cond/version_0/checkpoints/last.ckpt"


@pytest.fixture(scope="session")
def sketch_runs(tmp_path_factory) -> Path:
    """pix2pix-runs/p2p-tiny/version_0: a three-step pix2pix run (unet + patchgan) on
    Fashion-MNIST edges at 32 px, for the explorer's Sketch panel. A folder of its own, so the
    other explorer tests see the runs they always saw."""
    if not FASHION_MNIST.exists():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    tmp = tmp_path_factory.mktemp("sketch")
    runs = tmp / "pix2pix-runs"
    train_recipe({
        "name": "p2p-tiny", "seed": 3,
        "model": {"generator": {"name": "unet", "width": 4},
                  "discriminator": {"name": "patchgan", "width": 4, "layers": 2}},
        "loss": {"name": "pix2pix"},
        "data": {"name": "edges", "source": "fashion-mnist", "split": "test", "resolution": 32,
                 "channels": 1, "limit": 64},
        "train": serve_train(3, ema=0.0),
        "trainer": SERVE_TRAINER, "metrics": {"fid_every": 0}}, tmp, runs)
    return runs


@pytest.fixture(scope="session")
def sketch_ckpt(sketch_runs) -> str:
    return "pix2pix-runs/p2p-tiny/version_0/checkpoints/last.ckpt"


FOLDER_CLASSES = ("boots", "coats", "hats")


@pytest.fixture(scope="session")
def labelled_runs(tmp_path_factory) -> Path:
    """folder-runs/folder-cond/version_0: a four-step conditional DCGAN on a folder whose
    subfolders (FOLDER_CLASSES) are its classes; the folder is removed after training, so the
    explorer can only have the names from the checkpoint."""
    tmp = tmp_path_factory.mktemp("labelled")
    images = tmp / "images"
    for name in FOLDER_CLASSES:
        random_images(images / name, 8)
    run = train_recipe({
        "name": "folder-cond", "seed": 4,
        "model": {"generator": {"name": "dcgan", "latent_dim": 8, "width": 8},
                  "discriminator": {"name": "dcgan", "width": 8}},
        "data": {"name": "folder", "root": str(images), "resolution": 16, "channels": 3,
                 "conditional": True},
        "train": serve_train(4, ema=0.9),
        "trainer": SERVE_TRAINER, "metrics": {"fid_every": 0}}, tmp, tmp / "folder-runs")
    shutil.rmtree(images)
    return run.parent.parent


@pytest.fixture(scope="session")
def labelled_ckpt(labelled_runs) -> str:
    return "folder-runs/folder-cond/version_0/checkpoints/last.ckpt"
