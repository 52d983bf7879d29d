"""Tiny runs for the explorer's tests, trained once per session: a DCGAN on random images
(with sample grids over training and, written beside its log, a FID curve) and a
class-conditional StyleGAN-lite on Fashion-MNIST (truncation, classes, style mixing)."""

from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
needs_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST.exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def _random_images(root: Path, count: int, size: int = 16) -> Path:
    generator = torch.Generator().manual_seed(0)
    root.mkdir(parents=True)
    for i in range(count):
        pixels = torch.randint(0, 256, (size, size, 3), generator=generator, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(root / f"{i}.png")
    return root


def _train(raw: dict, folder: Path, runs: Path) -> Path:
    from gans.cli import main

    recipe = folder / f"{raw['name']}.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["train", str(recipe), "--out", str(runs)]) == 0
    (run_dir,) = (runs / raw["name"]).iterdir()
    return run_dir


TRAINER = {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False}


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory) -> Path:
    """runs/dcgan-tiny/version_0 and, where Fashion-MNIST is installed,
    runs/sg-cond/version_0."""
    tmp = tmp_path_factory.mktemp("serve")
    runs = tmp / "runs"
    images = _random_images(tmp / "images", 32)
    dcgan = _train({
        "name": "dcgan-tiny", "seed": 1,
        "model": {"generator": {"name": "dcgan", "latent_dim": 8, "width": 8},
                  "discriminator": {"name": "dcgan", "width": 8}},
        "data": {"name": "folder", "root": str(images), "resolution": 16, "channels": 3},
        "train": {"steps": 6, "batch_size": 8, "checkpoint_every": 3, "sample_every": 2,
                  "sample_grid": 4, "log_every": 1, "ema": 0.9},
        "trainer": TRAINER, "metrics": {"fid_every": 0}}, tmp, runs)
    # A FID curve as the FID callback logs it, without running Inception in a test.
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(dcgan))
    for step, fid in ((2, 300.0), (4, 250.5), (6, 260.0)):
        writer.add_scalar("fid", fid, step)
    writer.add_text("fid/protocol", "FID test-protocol: 8 generated vs 32 real", 6)
    writer.close()
    if FASHION_MNIST.exists():
        _train({
            "name": "sg-cond", "seed": 2,
            "model": {"generator": {"name": "stylegan-lite", "latent_dim": 16, "w_dim": 16,
                                    "channel_base": 128, "channel_max": 16},
                      "discriminator": {"name": "stylegan-lite", "channel_base": 128,
                                        "channel_max": 16}},
            "data": {"name": "fashion-mnist", "resolution": 16, "channels": 1, "limit": 256,
                     "conditional": True},
            "train": {"steps": 4, "batch_size": 8, "checkpoint_every": 4, "sample_every": 4,
                      "sample_grid": 4, "log_every": 1, "ema": 0.9},
            "trainer": TRAINER, "metrics": {"fid_every": 0}}, tmp, runs)
    return runs


@pytest.fixture(scope="session")
def dcgan_ckpt(serve_runs) -> str:
    return "runs/dcgan-tiny/version_0/checkpoints/last.ckpt"


@pytest.fixture(scope="session")
def style_ckpt(serve_runs) -> str:
    if not (serve_runs / "sg-cond").is_dir():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return "runs/sg-cond/version_0/checkpoints/last.ckpt"
