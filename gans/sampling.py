"""Checkpoint -> generator -> images. Needs nothing but the checkpoint: the recipe is inside."""

from __future__ import annotations

import inspect
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from gans.errors import GansError
from gans.files import atomic_write, ensure_writable_folder
from gans.recipe import Recipe, validate


def read_checkpoint(path: Path, trust: bool = False) -> dict:
    """A gans checkpoint as plain tensors and containers: no arbitrary code is unpickled unless
    `trust` (--trust-checkpoint) says the file comes from a trusted source."""
    path = Path(path)
    if not path.is_file():
        raise GansError(f"checkpoint {path} not found; pass runs/<name>/<version>/checkpoints/"
                        "last.ckpt (or best.ckpt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        # torch names the first object that only a full unpickle can build: a class, function
        # or module global outside its allowlist of tensors and containers.
        needs = re.search(r"GLOBAL (\S+?)\.?(\s|$)", str(exc))
        if needs is None or trust:
            why = _first_line(exc) if trust else exc.__class__.__name__  # torch's is a page
            raise GansError(f"{path} is not a readable gans checkpoint ({why}); "
                            "pass a .ckpt written by gans train") from None
        raise GansError(f"{path} holds {needs.group(1)}, which only a full unpickle can load, "
                        "and unpickling can run arbitrary code; if you trust where the file "
                        "came from, pass --trust-checkpoint") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise GansError(f"{path} is not a readable gans checkpoint "
                        f"({exc.__class__.__name__}); pass a .ckpt written by gans train") from None
    except Exception as exc:  # a trusted full unpickle runs the file's own code: anything goes
        raise GansError(f"{path} could not be unpickled ({_first_line(exc)}); "
                        "pass a .ckpt written by gans train") from None
    hyper = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hyper, dict) or not isinstance(hyper.get("recipe"), dict) \
            or not isinstance(ckpt.get("state_dict"), dict):
        raise GansError(f"{path} is not a gans checkpoint (it holds no recipe); "
                        "pass a .ckpt written by gans train")
    return ckpt


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0][:120]}" if text else exc.__class__.__name__


def load_generator(path: Path, use_ema: bool = True,
                   trust: bool = False) -> tuple[nn.Module, Recipe, str]:
    """(generator in eval mode, its recipe, which weights: 'ema' or 'raw')."""
    from gans.module import build_networks

    ckpt = read_checkpoint(path, trust=trust)
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


def supports_truncation(generator: nn.Module) -> bool:
    """Whether the generator takes `truncation_psi` (a tracked average w to pull toward)."""
    return "truncation_psi" in inspect.signature(generator.forward).parameters


def supports_style_mixing(generator: nn.Module) -> bool:
    return all(hasattr(generator, name) for name in ("mapping", "synthesis", "num_ws"))


def _check_truncation(generator: nn.Module, truncation: Optional[float]) -> dict:
    if truncation is None:
        return {}
    if not supports_truncation(generator):
        raise GansError(f"--truncation: the {type(generator).__name__} of this checkpoint has no "
                        "truncation (it needs a mapping network with an average w, such as "
                        "stylegan-lite); drop --truncation")
    if not 0.0 <= truncation <= 1.0:
        raise GansError(f"--truncation must be in [0, 1] (1 = none, 0.7 is usual), "
                        f"got {truncation}")
    return {"truncation_psi": truncation}


@torch.no_grad()
def generate(generator: nn.Module, num: int, seed: int, batch_size: int = 256,
             device: Optional[torch.device] = None,
             truncation: Optional[float] = None) -> torch.Tensor:
    """`num` images in [-1, 1] as a CPU float tensor; `truncation` psi where the model has it."""
    options = _check_truncation(generator, truncation)
    device = device or next(generator.parameters()).device
    z = latents(num, generator.latent_dim, seed)
    return torch.cat([generator(chunk.to(device), **options).float().cpu()
                      for chunk in z.split(batch_size)])


@torch.no_grad()
def style_mixing_grid(generator: nn.Module, seeds: list,
                      truncation: Optional[float] = None) -> torch.Tensor:
    """The usual style-mixing grid as (len(seeds) + 1)^2 images, row by row.

    The first row holds each seed's own image, and so does the first column (the corner is
    blank); the cell at (row i, column j) takes its coarse styles (the layers up to 8x8, pose
    and shape) from row seed i and its fine styles (texture, colour) from column seed j.
    """
    if not supports_style_mixing(generator):
        raise GansError(f"--style-mix: the {type(generator).__name__} of this checkpoint has no "
                        "per-layer styles (it needs mapping, synthesis and num_ws, such as "
                        "stylegan-lite); drop --style-mix")
    psi = _check_truncation(generator, truncation).get("truncation_psi", 1.0)
    device = next(generator.parameters()).device
    z = torch.cat([latents(1, generator.latent_dim, seed) for seed in seeds]).to(device)
    ws = generator.broadcast(generator.mapping(z, psi))
    own = generator.synthesis(ws, noise=False).float().cpu()
    coarse = min(4, generator.num_ws - 1)  # the 4x4 and 8x8 layers
    rows = [torch.cat([torch.ones_like(own[:1]), own])]
    for i in range(len(seeds)):
        mixed = ws.clone()
        mixed[:, :coarse] = ws[i, :coarse]
        rows.append(torch.cat([own[i:i + 1], generator.synthesis(mixed, noise=False).float().cpu()]))
    return torch.cat(rows)


def parse_seeds(text: str) -> list:
    """"1,2,5-7" -> [1, 2, 5, 6, 7]."""
    seeds = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            seeds += range(int(low), int(high) + 1) if high else [int(low)]
    except ValueError:
        raise GansError(f"--seeds {text!r}: expected whole numbers and ranges, "
                        "e.g. 1,2,3,4 or 0-7") from None
    if not seeds:
        raise GansError(f"--seeds {text!r}: give at least one seed, e.g. 1,2,3,4")
    return seeds


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
