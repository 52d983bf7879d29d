"""Writing files so that an interrupted write never leaves a partial one, and checking early
that an output folder can be written at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gans.errors import GansError


def atomic_write(target: Path, write, check=None) -> None:
    """`write(binary file)` into a temp file beside `target`, fsync, optionally
    `check(temp path)`, then rename over `target`: readers see the old file or the new one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def ensure_writable_folder(folder: Path, fix: str) -> None:
    """Create `folder` and prove a file can be written there, or raise a one-line error."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise GansError(f"cannot write to {folder} ({exc.strerror or exc.__class__.__name__}); "
                        f"{fix}") from None
