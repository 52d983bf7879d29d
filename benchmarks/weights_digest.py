"""Digest of the weights after a short run of every shipped recipe: a refactoring check.

    python benchmarks/weights_digest.py [--steps 50] [--out /tmp/digest] > before.txt
    ... change the code ...
    python benchmarks/weights_digest.py [--steps 50] [--out /tmp/digest] > after.txt
    diff before.txt after.txt

Each recipe under recipes/ (the bench suites aside) trains `--steps` generator steps through
`gans train` (in-process), with FID tracking off and a small data limit; then the sha256 of the
generator, discriminator and EMA weights of last.ckpt is printed, with the losses logged at the
first steps. Two code versions that change no behaviour print the same lines on one machine.
Recipes on image folders (and pair folders) train on generated random images of the recipe's
size.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def random_folder(root: Path, count: int, size: int, classes: int = 0, seed: int = 0) -> Path:
    """`count` random images; with `classes`, spread over that many class subfolders (a
    conditional folder recipe takes its classes from them)."""
    from PIL import Image

    generator = torch.Generator().manual_seed(seed)
    for i in range(count):
        folder = root / f"class{i % classes}" if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (size, size, 3), generator=generator, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")
    return root


def digest(tensors: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        flat = tensors[key].detach().cpu().contiguous().reshape(-1)  # any layout, one order
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", nargs="*", default=None, help="recipe paths relative to recipes/")
    args = parser.parse_args()
    from gans.recipe import load_recipe
    from gans.training.run import train

    out = args.out or Path(tempfile.mkdtemp(prefix="gans-digest-"))
    recipes = sorted(p for p in (REPO / "recipes").rglob("*.yaml") if "bench" not in p.parts)
    torch.set_num_threads(1)
    for path in recipes:
        rel = str(path.relative_to(REPO / "recipes"))
        if args.only and rel not in args.only:
            continue
        overrides = [f"train.steps={args.steps}", "metrics.fid_every=0", "data.limit=640",
                     "train.checkpoint_every=1000", "train.sample_every=1000",
                     "trainer.enable_progress_bar=false", "train.log_every=1",
                     "trainer.accelerator=cpu"]
        probe = load_recipe(path, [*overrides, "data.root=/nonexistent"]) \
            if "folder" in path.read_text() else load_recipe(path, overrides)
        if probe.data.name == "folder":
            classes = 4 if probe.data.conditional else 0
            folder = random_folder(out / "images" / f"{probe.data.resolution}-{classes}", 64,
                                   probe.data.resolution, classes)
            overrides.append(f"data.root={folder}")
        if probe.data.name == "pairs":  # folders A/ (inputs) and B/ (targets) of the same names
            folder = out / "pairs" / str(probe.data.resolution)
            for side, seed in (("A", 0), ("B", 1)):
                random_folder(folder / side, 64, probe.data.resolution, seed=seed)
            overrides.append(f"data.root={folder}")
        recipe = load_recipe(path, overrides)
        run_dir = train(recipe, out / "runs")
        state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                           weights_only=True)["state_dict"]
        parts = {name: digest({k: v for k, v in state.items() if k.startswith(name + ".")})
                 for name in ("generator", "discriminator", "g_ema")}
        print(rel, " ".join(f"{k}={v}" for k, v in parts.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
