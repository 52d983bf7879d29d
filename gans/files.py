"""Writing files so that an interrupted write never leaves a partial one, and checking early
that an output folder can be written at all."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

from gans.errors import GansError


def atomic_write(target: Path, write, check=None) -> None:
    """`write(binary file)` into a temp file beside `target`, fsync, optionally
    `check(temp path)`, then rename over `target`: readers see the old file or the new one.

    The temp file is `.<name>.tmp-<host>-<pid>`: hidden, never ending like the target, and
    traceable to its writer, so that `remove_stale_temps` can delete what a killed writer left.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{_temp_prefix(target)}{_HOST}-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.fchmod(fd, 0o644)  # whatever the umask: a shared cache must be readable by others
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_HOST = socket.gethostname().replace("-", "_")  # "-" separates host from pid in temp names


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def remove_stale_temps(target: Path) -> list[Path]:
    """Delete the temp files of `target` left by writers on this host that were killed
    mid-write (their process is gone); returns what was deleted. Another host's are kept:
    their writers cannot be checked from here."""
    target = Path(target)
    prefix = _temp_prefix(target)
    removed = []
    try:
        names = [n for n in os.listdir(target.parent) if n.startswith(prefix)]
    except OSError:
        return removed
    for name in names:
        host, _, pid = name[len(prefix):].rpartition("-")
        if host != _HOST or not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        try:
            os.unlink(target.parent / name)
            removed.append(target.parent / name)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


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
