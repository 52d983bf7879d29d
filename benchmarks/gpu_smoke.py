"""GPU smoke run: a few hundred steps of DCGAN-64 and StyleGAN-lite at bf16-mixed, img/s, FID.

    python benchmarks/gpu_smoke.py [--steps 300] [--devices 1] [--out /tmp/gpu-smoke]
                                   [--data-root DIR] [--no-fid]

Meant for a machine with one or more CUDA GPUs, run once as a whole: it trains each model
through `gans.training.run.train` (the same path as `gans train`, Lightning included) on Fashion-MNIST
at 64x64 when it is found (--data-root, the Debian package, or torchvision's download), else on
the emoji folder from `python data/build_emoji.py`, else on generated shapes, and says which.
Then FID of the EMA generator on the GPU (1,000 generated vs 2,000 real images, fp32 Inception),
and a table with the GPU's name (--no-fid skips it, for a machine without the Inception
weights and no way to fetch them). With --devices N it also checks the N-GPU path (ddp_gan).
Nothing here is part of the test suite: CI has no GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODELS = {
    "dcgan-64": {"generator": {"name": "dcgan", "latent_dim": 100, "width": 64},
                 "discriminator": {"name": "dcgan", "width": 64}},
    "stylegan-lite-64": {"generator": {"name": "stylegan-lite", "channel_base": 2048},
                         "discriminator": {"name": "stylegan-lite", "channel_base": 2048}},
}


def generated_shapes(folder: Path, count: int = 2000) -> Path:
    """Coloured discs and squares on grey, for machines without any dataset."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = torch.Generator().manual_seed(0)
    for i in range(count):
        image = Image.new("RGB", (64, 64), (128, 128, 128))
        draw = ImageDraw.Draw(image)
        x, y, r = (torch.randint(12, 52, (2,), generator=rng).tolist()
                   + torch.randint(6, 14, (1,), generator=rng).tolist())
        colour = tuple(torch.randint(0, 256, (3,), generator=rng).tolist())
        (draw.ellipse if i % 2 else draw.rectangle)([x - r, y - r, x + r, y + r], fill=colour)
        image.save(folder / f"{i:05d}.png")
    return folder


def choose_data(out: Path, root: str | None) -> tuple[dict, str]:
    from gans.data import load_images
    from gans.errors import GansError
    from gans.recipe import DataSection

    fashion = {"name": "fashion-mnist", "resolution": 64, "channels": 1}
    if root:
        fashion["root"] = root
    try:
        load_images(DataSection(**fashion, limit=10))
        return fashion, "Fashion-MNIST"
    except GansError as missing:
        if root:  # asked for by name: no quiet fallback to other data
            sys.exit(f"gpu_smoke: --data-root {root}: {missing}")
    emoji = REPO / "data" / "emoji" / "64"
    if emoji.is_dir() and any(emoji.glob("*.png")):
        return {"name": "folder", "root": str(emoji), "resolution": 64, "channels": 3}, "emoji"
    shapes = generated_shapes(out / "shapes")
    return {"name": "folder", "root": str(shapes), "resolution": 64, "channels": 3}, \
        "generated shapes"


def images_per_second(run_dir: Path) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    if "images_per_sec" not in events.Tags()["scalars"]:  # fewer steps than one log interval
        return math.nan
    rates = [e.value for e in events.Scalars("images_per_sec")]
    rates = rates[len(rates) // 3:]  # past the warm-up
    return sorted(rates)[len(rates) // 2] if rates else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--out", default="/tmp/gpu-smoke")
    parser.add_argument("--data-root", help="a folder holding Fashion-MNIST's four idx files")
    parser.add_argument("--no-fid", action="store_true", help="train and time only")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_smoke: no CUDA GPU here; run it on a GPU machine")
    from gans.evaluation.evaluate import EvalOptions, evaluate
    from gans.recipe import validate
    from gans.training.run import train

    out = Path(args.out)
    data, data_name = choose_data(out, args.data_root)
    gpu = torch.cuda.get_device_name(0)
    rows = []
    for name, model in MODELS.items():
        recipe = validate({
            "name": name, "seed": 0, "model": model, "data": data,
            "loss": {"r1_gamma": 0.2, "r1_every": 16} if "stylegan" in name else {},
            "optim": ({"generator": {"lr": 2.5e-3, "betas": [0.0, 0.99]},
                       "discriminator": {"lr": 2.5e-3, "betas": [0.0, 0.99]}}
                      if "stylegan" in name else {}),
            "train": {"steps": args.steps, "batch_size": args.batch, "log_every": 10,
                      "checkpoint_every": args.steps, "sample_every": args.steps},
            "trainer": {"accelerator": "gpu", "devices": args.devices,
                        "precision": "bf16-mixed", "enable_progress_bar": False},
        }, source=f"gpu_smoke {name}")
        started = time.perf_counter()
        run_dir = train(recipe, out / "runs")
        seconds = time.perf_counter() - started
        if args.devices > 1 and torch.distributed.is_initialized() and \
                torch.distributed.get_rank() != 0:
            continue
        fid = None if args.no_fid else evaluate(
            run_dir / "checkpoints" / "last.ckpt",
            EvalOptions(metrics=["fid"], num_fake=1000, num_real=2000, reference="train",
                        device="cuda"))["fid"]["value"]
        rows.append({"model": name, "gpu": gpu, "devices": args.devices, "data": data_name,
                     "steps": args.steps, "batch_per_device": args.batch,
                     "precision": "bf16-mixed", "images_per_sec": images_per_second(run_dir),
                     "train_seconds": round(seconds, 1),
                     "fid_1k_vs_2k": None if fid is None else round(fid, 2)})
    print(json.dumps(rows, indent=1))
    print(f"\n| model | GPU | data | img/s (bf16-mixed) | FID 1k vs 2k after {args.steps} steps |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['gpu']} x{row['devices']} | {row['data']} | "
              f"{row['images_per_sec']:.0f} | {row['fid_1k_vs_2k'] or 'skipped (--no-fid)'} |")


if __name__ == "__main__":
    main()
