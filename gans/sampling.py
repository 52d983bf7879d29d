"""Checkpoint -> generator -> images. Needs nothing but the checkpoint: the recipe is inside."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from gans.errors import GansError
from gans.files import atomic_write, ensure_writable_folder
from gans.recipe import Recipe, validate


def read_checkpoint(path: Path) -> dict:
    """A gans checkpoint as plain tensors and containers (no arbitrary code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise GansError(f"checkpoint {path} not found; pass runs/<name>/<version>/checkpoints/"
                        "last.ckpt (or best.ckpt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError,
            OSError) as exc:
        raise GansError(f"{path} is not a readable gans checkpoint "
                        f"({exc.__class__.__name__}); pass a .ckpt written by gans train") from None
    if not isinstance(ckpt, dict) or "recipe" not in ckpt.get("hyper_parameters", {}):
        raise GansError(f"{path} is not a gans checkpoint (it holds no recipe); "
                        "pass a .ckpt written by gans train")
    return ckpt


def load_generator(path: Path, use_ema: bool = True) -> tuple[nn.Module, Recipe, str]:
    """(generator in eval mode, its recipe, which weights: 'ema' or 'raw')."""
    from gans.module import build_networks

    ckpt = read_checkpoint(path)
    recipe = validate(ckpt["hyper_parameters"]["recipe"], source=f"{path} (recipe inside)")
    generator, _ = build_networks(recipe)
    state = ckpt["state_dict"]
    prefix = "g_ema.module." if use_ema and any(k.startswith("g_ema.module.") for k in state) \
        else "generator."
    generator.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                               if k.startswith(prefix)})
    return generator.eval(), recipe, "ema" if prefix.startswith("g_ema") else "raw"


def latents(num: int, latent_dim: int, seed: int) -> torch.Tensor:
    """Drawn on the CPU so a seed gives the same images on every device."""
    return torch.randn(num, latent_dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def generate(generator: nn.Module, num: int, seed: int, batch_size: int = 256,
             device: Optional[torch.device] = None) -> torch.Tensor:
    """`num` images in [-1, 1] as a CPU float tensor."""
    device = device or next(generator.parameters()).device
    z = latents(num, generator.latent_dim, seed)
    return torch.cat([generator(chunk.to(device)).float().cpu() for chunk in z.split(batch_size)])


def write_samples(images: torch.Tensor, out: str, nrow: Optional[int] = None,
                  seed: int = 0) -> list[Path]:
    """A grid at `out`, or one PNG per image when `out` ends with a slash or is a folder."""
    from torchvision.utils import save_image

    target = Path(out)
    as_folder = out.endswith(("/", os.sep)) or target.is_dir()
    folder = target if as_folder else target.parent
    if not as_folder and target.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise GansError(f"--out {out}: give a .png (or .jpg) file for a grid, or a folder "
                        "ending with / for single images")
    ensure_writable_folder(folder, "pass --out in a writable folder")
    images = (images + 1) / 2
    if as_folder:
        written = []
        for i, image in enumerate(images):
            path = folder / f"seed{seed}_{i:05d}.png"
            atomic_write(path, lambda f, im=image: save_image(im, f, format="png"))
            written.append(path)
        return written
    rows = nrow or max(1, int(len(images) ** 0.5))
    fmt = "png" if target.suffix.lower() == ".png" else "jpeg"
    atomic_write(target, lambda f: save_image(images, f, nrow=rows, format=fmt))
    return [target]
