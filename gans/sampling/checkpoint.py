"""Checkpoints and exported generators in, networks and recipes out: the one reader.

A checkpoint loads weights-only (plain tensors and containers: no code from the file runs)
unless `trust` (--trust-checkpoint) says the file comes from a trusted source. The recipe
inside a file is a second way in: a dotted path in `model.generator.name` (or the
discriminator, objective or dataset) would be imported, and importing runs that module's code.
So a file whose recipe names anything outside gans's registries is refused unless trusted,
like a pickle. Sampling, eval, export, model cards, resume, bench and the explorer read
checkpoints here; nothing here imports a Lightning module.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from gans.errors import CheckpointError
from gans.recipe import Recipe, validate

EXPORT_FORMAT = "gans-generator/1"
# Recipe keys that name code: (key path, the registry that knows the built-in names).
CODE_KEYS = (("model", "generator", "name"), ("model", "discriminator", "name"),
             ("loss", "name"), ("data", "name"))


def checkpoint_recipe(raw: dict, path: Path, trust: bool = False) -> Recipe:
    """The validated recipe inside `path`; names outside the registries need `trust`."""
    if not trust:
        refuse_foreign_code(raw, path)
    return validate(raw, source=f"{path} (recipe inside)")


def refuse_foreign_code(raw: dict, path: Path) -> None:
    from gans import registry

    tables = {"generator": registry.GENERATORS, "discriminator": registry.DISCRIMINATORS,
              "loss": registry.OBJECTIVES, "data": registry.DATASETS}
    for keys in CODE_KEYS:
        node = raw
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node not in tables[keys[-2]].names():
            _refuse(path, ".".join(keys), node)
    policy = (raw.get("augment") or {}).get("policy") if isinstance(raw, dict) else None
    for name in policy if isinstance(policy, list) else ():
        if isinstance(name, str) and name not in registry.AUGMENTATIONS.names():
            _refuse(path, "augment.policy", name)


def _refuse(path: Path, key: str, name: str) -> None:
    raise CheckpointError(f"{path}: its recipe names {key}={name!r}, which is not built into gans, "
                          "and loading it would import and run that code; if you trust where the "
                          "file came from, pass --trust-checkpoint")


def read_checkpoint(path: Path, trust: bool = False) -> dict:
    """A gans checkpoint as plain tensors and containers: no arbitrary code is unpickled unless
    `trust` (--trust-checkpoint) says the file comes from a trusted source."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; pass runs/<name>/<version>/"
                              "checkpoints/last.ckpt (or best.ckpt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        # torch names the first object that only a full unpickle can build: a class, function
        # or module global outside its allowlist of tensors and containers.
        needs = re.search(r"(?:GLOBAL|Unsupported class) (\S+?)\.?(\s|$)", str(exc))
        if needs is None or trust:
            why = _first_line(exc) if trust else exc.__class__.__name__  # torch's is a page
            raise CheckpointError(f"{path} is not a readable gans checkpoint ({why}); "
                                  "pass a .ckpt written by gans train") from None
        raise CheckpointError(f"{path} holds {needs.group(1)}, which only a full unpickle can "
                              "load, and unpickling can run arbitrary code; if you trust where "
                              "the file came from, pass --trust-checkpoint") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable gans checkpoint "
                              f"({exc.__class__.__name__}); pass a .ckpt written by gans "
                              "train") from None
    except Exception as exc:  # a trusted full unpickle runs the file's own code: anything goes
        raise CheckpointError(f"{path} could not be unpickled ({_first_line(exc)}); "
                              "pass a .ckpt written by gans train") from None
    hyper = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hyper, dict) or not isinstance(hyper.get("recipe"), dict) \
            or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path} is not a gans checkpoint (it holds no recipe); "
                              "pass a .ckpt written by gans train")
    return ckpt


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0][:120]}" if text else exc.__class__.__name__


def load_generator(path: Path, use_ema: bool = True,
                   trust: bool = False) -> tuple[nn.Module, Recipe, str]:
    """(generator in eval mode, its recipe, which weights: 'ema' or 'raw'); `path` is a .ckpt
    or a generator exported by `gans export` (.safetensors)."""
    from gans.models.build import build_networks

    if Path(path).suffix.lower() == ".safetensors":
        return load_exported(Path(path), use_ema=use_ema, trust=trust)
    ckpt = read_checkpoint(path, trust=trust)
    recipe = checkpoint_recipe(ckpt["hyper_parameters"]["recipe"], path, trust)
    generator, _ = build_networks(recipe)
    state = ckpt["state_dict"]
    prefix = "g_ema.module." if use_ema and any(k.startswith("g_ema.module.") for k in state) \
        else "generator."
    generator.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                               if k.startswith(prefix)})
    return generator.eval(), recipe, "ema" if prefix.startswith("g_ema") else "raw"


def read_exported(path: Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a file written by `gans export`, or a one-line CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found; pass a .safetensors written by gans export")
    try:
        data = path.read_bytes()
        state = load(data)
        metadata = _metadata(data)
    except (SafetensorError, ValueError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file "
                              f"({exc.__class__.__name__}); pass a file written by gans export") \
            from None
    if metadata.get("format") != EXPORT_FORMAT or "recipe" not in metadata:
        raise CheckpointError(f"{path} is not a gans generator (its metadata has no recipe); "
                              "pass a file written by gans export")
    return state, metadata


def _metadata(data: bytes) -> dict:
    # The header is 8 bytes of length, then JSON; safetensors.torch.load drops the metadata.
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + size]).get("__metadata__") or {}


def load_exported(path: Path, use_ema: bool = True,
                  trust: bool = False) -> tuple[nn.Module, Recipe, str]:
    """(generator in eval mode, its recipe, 'ema' or 'raw'), as load_generator returns them."""
    from gans.models.build import build_networks

    state, metadata = read_exported(path)
    weights = metadata.get("weights", "ema")
    if not use_ema and weights == "ema":
        raise CheckpointError(f"{path} holds the EMA generator only; for the trained one export "
                              "again with gans export CKPT --no-ema, or drop --no-ema")
    try:
        raw = json.loads(metadata["recipe"])
    except ValueError:
        raise CheckpointError(f"{path} has a damaged recipe in its metadata; export it again") \
            from None
    recipe = checkpoint_recipe(raw, path, trust)
    generator, _ = build_networks(recipe)
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise CheckpointError(f"{path}: the weights do not fit the recipe's generator ({first}); "
                              "export it again with this version of gans") from None
    return generator.eval(), recipe, weights


def load_discriminator(path: Path, trust: bool = False) -> nn.Module:
    """The discriminator of a .ckpt, in eval mode (projection can measure distances in its
    features); an exported generator has none."""
    from gans.models.build import build_networks

    if Path(path).suffix.lower() == ".safetensors":
        raise CheckpointError(f"{path} is an exported generator and holds no discriminator; "
                              "pass the .ckpt written by gans train, or another distance")
    ckpt = read_checkpoint(path, trust=trust)
    recipe = checkpoint_recipe(ckpt["hyper_parameters"]["recipe"], path, trust)
    _, discriminator = build_networks(recipe)
    prefix = "discriminator."
    discriminator.load_state_dict({k[len(prefix):]: v for k, v in ckpt["state_dict"].items()
                                   if k.startswith(prefix)})
    return discriminator.eval()
