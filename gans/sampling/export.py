"""`gans export`: the generator alone, as safetensors (no pickle, so loading it runs no code),
with the recipe that rebuilds it in the file's metadata."""

from __future__ import annotations

import json
from pathlib import Path

from gans.errors import GansError
from gans.files import atomic_write, ensure_writable_folder

from gans.sampling.checkpoint import EXPORT_FORMAT as FORMAT


def export_generator(checkpoint: Path, out: Path, use_ema: bool = True,
                     trust: bool = False) -> str:
    """Write the generator of `checkpoint` (EMA unless `use_ema` is false) to `out`; returns
    which weights were written, 'ema' or 'raw'."""
    from safetensors.torch import save

    from gans import __version__
    from gans.sampling.provenance import file_sha256
    from gans.sampling.checkpoint import load_generator, read_checkpoint

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


def source_sha256(path: Path) -> str:
    """The checkpoint hash images are labelled with: for an exported generator, that of the
    checkpoint it came from, so images from both carry the same one."""
    from gans.sampling.checkpoint import read_exported
    from gans.sampling.provenance import file_sha256

    if Path(path).suffix.lower() == ".safetensors":
        return read_exported(path)[1].get("checkpoint_sha256", "unknown")
    return file_sha256(path)

