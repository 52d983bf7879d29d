"""What the explorer may serve: the runs and checkpoints under the paths it was started with.

Every file the server opens is named by an id relative to one of those roots and goes through
`Library.checkpoint` or `Library.run`, which refuse `..`, absolute paths and anything whose
real path (symlinks followed) lies outside the root. The tree is scanned on each request, so a
checkpoint a live training run writes shows up without a restart; what is read from the files
is cached by their size and modification time.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from gans.serve.backend import GansError, is_paired, load_recipe, read_run

CHECKPOINT_SUFFIXES = (".ckpt", ".safetensors")
MAX_DEPTH = 6  # runs/<name>/<version>/checkpoints/last.ckpt is 4 below the root
SAMPLE_NAME = re.compile(r"^step_(\d+)\.png$")
# Curves the runs panel draws; anything else in the events stays in TensorBoard.
CURVE_TAGS = ("fid", "loss/generator", "loss/discriminator", "D/real", "D/fake", "kimg",
              "images_per_sec")


class NotFound(GansError):
    """A path or id the server does not serve (HTTP 404)."""


class BadPath(GansError):
    """An id that could never name a file under a root: `..`, absolute, odd characters (400)."""


@dataclass(frozen=True)
class Root:
    name: str
    path: Path  # resolved: a folder of runs, one run, or a single checkpoint file


class Library:
    def __init__(self, paths: list):
        self.roots: dict[str, Root] = {}
        for given in paths:
            path = Path(given).expanduser()
            if not path.exists():
                raise GansError(f"{given}: no such file or folder; pass a runs folder (e.g. "
                                "runs/) or a .ckpt / .safetensors file")
            if path.is_file() and path.suffix.lower() not in CHECKPOINT_SUFFIXES:
                raise GansError(f"{given}: not a checkpoint; pass a runs folder or a .ckpt / "
                                ".safetensors file")
            path = path.resolve()
            name = path.name or "root"
            base, n = name, 2
            while name in self.roots:  # two roots both called runs/ stay apart
                name, n = f"{base}-{n}", n + 1
            self.roots[name] = Root(name, path)
        if not self.roots:
            raise GansError("give at least one runs folder or checkpoint")
        self._cache: dict = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ ids and paths

    def _resolve(self, ident: str, what: str) -> tuple[Root, Path]:
        if not isinstance(ident, str) or not ident:
            raise BadPath(f"{what}: missing; pass an id from /api/runs")
        if "\\" in ident or "\0" in ident or ident.startswith("/") or re.match(r"^[A-Za-z]:", ident):
            raise BadPath(f"{what} {ident!r}: ids are relative paths as /api/runs lists them, "
                          "without absolute paths or backslashes")
        parts = ident.split("/")
        if any(part in ("..", ".", "") for part in parts):
            raise BadPath(f"{what} {ident!r}: '..', '.' and empty parts are not allowed in ids")
        root = self.roots.get(parts[0])
        if root is None:
            raise NotFound(f"{what} {ident!r}: not under the served paths "
                           f"({', '.join(self.roots)})")
        target = root.path.joinpath(*parts[1:]).resolve()
        if target != root.path and root.path not in target.parents:
            raise NotFound(f"{what} {ident!r}: not under the served paths (a link out of them)")
        return root, target

    def ident(self, root: Root, path: Path) -> str:
        rel = path.relative_to(root.path)
        return "/".join((root.name, *rel.parts))

    def checkpoint(self, ident: str) -> Path:
        """The checkpoint file an id names, or NotFound / BadPath."""
        _, path = self._resolve(ident, "ckpt")
        if not path.is_file() or path.suffix.lower() not in CHECKPOINT_SUFFIXES:
            raise NotFound(f"ckpt {ident!r}: no such checkpoint; pick one from /api/runs")
        return path

    def run(self, ident: str) -> Path:
        root, path = self._resolve(ident, "run")
        if not path.is_dir() or not _is_run(path):
            raise NotFound(f"run {ident!r}: no such run; pick one from /api/runs")
        return path

    def run_sample(self, ident: str, name: str) -> Path:
        """A training sample grid (samples/step_*.png) of a run."""
        if not SAMPLE_NAME.match(name or ""):
            raise BadPath(f"name {name!r}: expected a sample grid name such as "
                          "step_0000250.png, as /api/runs lists them")
        path = self.run(ident) / "samples" / name
        if not path.is_file() or path.resolve().parent != (self.run(ident) / "samples").resolve():
            raise NotFound(f"name {name!r}: no such sample grid in run {ident!r}")
        return path

    # ------------------------------------------------------------------ scanning

    def _walk(self, root: Root):
        """Run folders and loose checkpoint files under a root, without following links out."""
        if root.path.is_file():
            yield "checkpoint", root.path
            return
        if _is_run(root.path):
            yield "run", root.path
            return
        stack = [(root.path, 0)]
        while stack:
            folder, depth = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                real = path.resolve()
                if real != root.path and root.path not in real.parents:
                    continue  # a link out of the served tree: never listed, never served
                if real.is_dir():
                    if _is_run(real):
                        yield "run", path
                    elif depth < MAX_DEPTH:
                        stack.append((path, depth + 1))
                elif path.suffix.lower() in CHECKPOINT_SUFFIXES:
                    yield "checkpoint", path

    def listing(self) -> dict:
        runs, loose = [], []
        for root in self.roots.values():
            for kind, path in self._walk(root):
                if kind == "run":
                    runs.append(self.describe_run(root, path))
                else:
                    loose.append(self._checkpoint_entry(root, path))
        runs.sort(key=lambda r: r["id"])
        loose.sort(key=lambda c: c["id"])
        return {"roots": list(self.roots), "runs": runs, "checkpoints": loose}

    def _checkpoint_entry(self, root: Root, path: Path) -> dict:
        stat = path.stat()
        return {"id": self.ident(root, path), "name": path.name, "size": stat.st_size,
                "mtime": stat.st_mtime}

    def describe_run(self, root: Root, path: Path) -> dict:
        ident = self.ident(root, path)
        checkpoints = sorted(
            (self._checkpoint_entry(root, p) for p in (path / "checkpoints").glob("*")
             if p.suffix.lower() in CHECKPOINT_SUFFIXES and p.is_file()
             and path in p.resolve().parents),
            key=lambda c: (c["name"] != "last.ckpt", c["name"] != "best.ckpt", c["name"]))
        samples = sorted(p.name for p in (path / "samples").glob("step_*.png")
                         if SAMPLE_NAME.match(p.name))
        log = self.curves(path)
        fids = log["curves"].get("fid") or []
        best = min(fids, key=lambda point: point[1]) if fids else None
        return {
            "id": ident, "name": "/".join(path.relative_to(root.path).parts) or root.name,
            "recipe": self.recipe_summary(path),
            "steps": log["steps"], "kimg": log["kimg"], "seconds": log["seconds"],
            "best_fid": None if best is None else {"step": best[0], "value": best[1]},
            "fid_protocol": log["fid_protocol"],
            "checkpoints": checkpoints,
            "samples": samples,
        }

    # ------------------------------------------------------------------ cached reads

    def _cached(self, key, files: list, compute):
        stamp = tuple((str(f), *_stamp(f)) for f in files)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
        value = compute()
        with self._lock:
            self._cache[key] = (stamp, value)
        return value

    def curves(self, run: Path) -> dict:
        """Scalars of a run against the generator step, from its TensorBoard events, re-read
        only when an event file changed (a live run appends to its file)."""
        files = sorted(run.glob("events.out.tfevents.*"))

        def read() -> dict:
            log = read_run(run)
            curves = {tag: [[step, value] for step, _, value in log.curve(tag)]
                      for tag in CURVE_TAGS}
            curves = {tag: points for tag, points in curves.items() if points}
            steps = max((step for tag in log.tags() for step, _, _ in log.scalars(tag)),
                        default=None)
            kimg = curves["kimg"][-1][1] if curves.get("kimg") else None
            protocol = log.text("fid/protocol") if curves.get("fid") else None
            return {"curves": curves, "steps": steps, "kimg": kimg,
                    "seconds": round(log.seconds, 1), "fid_protocol": protocol}

        return self._cached(("curves", str(run)), files, read)

    def recipe_summary(self, run: Path) -> dict:
        path = run / "recipe.yaml"

        def read() -> dict:
            if not path.is_file():
                return {"error": "no recipe.yaml in the run folder"}
            try:
                recipe = load_recipe(path)
            except GansError as exc:
                return {"error": str(exc)}
            data = recipe.data
            return {"name": recipe.name,
                    "generator": recipe.model.generator.get("name"),
                    "discriminator": recipe.model.discriminator.get("name"),
                    "loss": recipe.loss["name"], "data": data.name,
                    "resolution": data.resolution, "channels": data.channels,
                    "conditional": bool(data.conditional), "paired": is_paired(data),
                    "batch_size": recipe.train.batch_size,
                    "planned_steps": recipe.train.steps, "ema": recipe.train.ema}

        return self._cached(("recipe", str(run)), [path], read)


def _is_run(folder: Path) -> bool:
    return (folder / "recipe.yaml").is_file() or (folder / "checkpoints").is_dir() \
        or any(folder.glob("events.out.tfevents.*"))


def _stamp(path: Path) -> tuple:
    try:
        stat = Path(path).stat()
        return stat.st_size, stat.st_mtime_ns
    except OSError:
        return None, None


def find_run(path: Path) -> Optional[Path]:
    """The run folder a checkpoint lies in (runs/<name>/<version>/checkpoints/x.ckpt)."""
    folder = Path(path).parent
    run = folder.parent if folder.name == "checkpoints" else folder
    return run if _is_run(run) else None
