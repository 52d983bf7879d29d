"""`gans export`: the generator alone, as safetensors (no pickle, so loading it runs no code),
with the recipe that rebuilds it in the file's metadata."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from gans.errors import GansError
from gans.files import atomic_write, ensure_writable_folder

FORMAT = "gans-generator/1"


def export_generator(checkpoint: Path, out: Path, use_ema: bool = True,
                     trust: bool = False) -> str:
    """Write the generator of `checkpoint` (EMA unless `use_ema` is false) to `out`; returns
    which weights were written, 'ema' or 'raw'."""
    from safetensors.torch import save

    from gans import __version__
    from gans.sampling.provenance import file_sha256
    from gans.sampling.generate import load_generator, read_checkpoint

    out = Path(out)
    if out.suffix.lower() != ".safetensors":
        raise GansError(f"--out {out}: gans export writes safetensors; pass a file ending "
                        "in .safetensors")
    if Path(checkpoint).suffix.lower() == ".safetensors":
        raise GansError(f"{checkpoint} is already an exported generator; pass the .ckpt "
                        "written by gans train")
    ensure_writable_folder(out.parent, "pass --out in a writable folder")
    raw_recipe = read_checkpoint(checkpoint, trust=trust)["hyper_parameters"]["recipe"]
    generator, recipe, weights = load_generator(checkpoint, use_ema=use_ema, trust=trust)
    # Copies: safetensors refuses tensors that share memory, and wants them contiguous.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in generator.state_dict().items()}
    metadata = {"format": FORMAT, "gans_version": __version__,
                "recipe": json.dumps(raw_recipe, sort_keys=True, default=str),
                "weights": weights, "checkpoint_sha256": file_sha256(checkpoint),
                "generator": type(generator).__name__}
    data = save(state, metadata=metadata)
    atomic_write(out, lambda f: f.write(data))
    return weights


def read_exported(path: Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a file written by `gans export`, or a one-line GansError."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise GansError(f"{path} not found; pass a .safetensors written by gans export")
    try:
        data = path.read_bytes()
        state = load(data)
        metadata = _metadata(data)
    except (SafetensorError, ValueError, OSError, RuntimeError) as exc:
        raise GansError(f"{path} is not a readable safetensors file ({exc.__class__.__name__});"
                        " pass a file written by gans export") from None
    if metadata.get("format") != FORMAT or "recipe" not in metadata:
        raise GansError(f"{path} is not a gans generator (its metadata has no recipe); "
                        "pass a file written by gans export")
    return state, metadata


def _metadata(data: bytes) -> dict:
    # The header is 8 bytes of length, then JSON; safetensors.torch.load drops the metadata.
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + size]).get("__metadata__") or {}


def load_exported(path: Path, use_ema: bool = True) -> tuple[nn.Module, object, str]:
    """(generator in eval mode, its recipe, 'ema' or 'raw'), as load_generator returns them."""
    from gans.models.build import build_networks
    from gans.recipe import validate

    state, metadata = read_exported(path)
    weights = metadata.get("weights", "ema")
    if not use_ema and weights == "ema":
        raise GansError(f"{path} holds the EMA generator only; for the trained one export "
                        "again with gans export CKPT --no-ema, or drop --no-ema")
    try:
        raw = json.loads(metadata["recipe"])
    except ValueError:
        raise GansError(f"{path} has a damaged recipe in its metadata; export it again") from None
    recipe = validate(raw, source=f"{path} (recipe inside)")
    generator, _ = build_networks(recipe)
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise GansError(f"{path}: the weights do not fit the recipe's generator ({first}); "
                        "export it again with this version of gans") from None
    return generator.eval(), recipe, weights


def source_sha256(path: Path) -> str:
    """The checkpoint hash images are labelled with: for an exported generator, that of the
    checkpoint it came from, so images from both carry the same one."""
    from gans.sampling.provenance import file_sha256

    if Path(path).suffix.lower() == ".safetensors":
        return read_exported(path)[1].get("checkpoint_sha256", "unknown")
    return file_sha256(path)

