"""The runs of a suite: one per (variant, seed), each with its recipe under the suite's budget
and protocol, its folder, and whether it is new, to resume or done under the same settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from gans.bench.suite import EvalSpec, Suite, Variant
from gans.errors import GansError
from gans.hardware import uses_gpu
from gans.recipe import Recipe, deep_merge, validate
from gans.training.clock import Clock

UNLIMITED_STEPS = 10 ** 9  # a time budget: Lightning's max_time stops the run first
RESULT = "result.json"


@dataclass
class Run:
    variant: Variant
    seed: int
    recipe: Recipe
    folder: Path  # <out>/<suite>/<variant>/seed<k>

    @property
    def label(self) -> str:
        return f"{self.variant.name} seed {self.seed}"


def plan_runs(suite: Suite, out: Path, only: Optional[list] = None) -> list:
    """The runs (variant x seed) to do, each with its validated recipe."""
    names = [v.name for v in suite.variants]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise GansError(f"{suite.path}: two variants are named {duplicate!r}; rename one")
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise GansError(f"--only {unknown[0]}: no such variant in {suite.path}; "
                            f"variants: {', '.join(names)}")
    runs = []
    for variant in suite.variants:
        # Every variant is checked, even one --only leaves out: a bad suite fails as a whole.
        recipes = [_run_recipe(suite, variant, seed) for seed in suite.seeds]
        if only and variant.name not in only:
            continue
        for seed, recipe in zip(suite.seeds, recipes):
            runs.append(Run(variant, seed, recipe,
                            Path(out) / suite.name / variant.name / f"seed{seed}"))
    return runs


def _run_recipe(suite: Suite, variant: Variant, seed: int) -> Recipe:
    where = f"{suite.path}: variant {variant.name!r}"
    raw = deep_merge(variant.raw, {"name": f"seed{seed}", "seed": seed})
    probe = validate(deep_merge(raw, {"metrics": {"fid_every": 0}}), source=where)
    world = world_size(probe.trainer)
    if world != 1:
        raise GansError(f"{where}: trains on {world} devices; gans bench runs each run in one "
                        "process, so set trainer.devices: 1 (run parts of a suite on several "
                        "GPUs at once with --only, one command per GPU)")
    clock = Clock.of(probe)
    kind, amount = suite.budget
    trainer = {k: v for k, v in probe.trainer.items() if k != "max_time"}
    if kind == "steps":
        steps = amount
    elif kind == "kimg":
        steps = clock.g_steps_for_kimg(amount)
    else:
        steps = UNLIMITED_STEPS
        trainer["max_time"] = _max_time(amount)
    every = suite.eval.every
    if isinstance(every, dict):
        every = clock.g_steps_near_kimg(every["kimg"])
    raw = deep_merge(raw, {"train": {"steps": steps}, "metrics": {
        "fid_every": every, "fid_num_fake": suite.eval.track_num_fake or suite.eval.num_fake,
        "fid_num_real": suite.eval.num_real if suite.eval.num_real is not None else 10 ** 9,
        "fid_reference_split": suite.eval.reference, "fid_batch_size": suite.eval.batch_size}})
    raw["trainer"] = trainer
    return validate(raw, source=where)


def _max_time(minutes: float) -> str:
    seconds = max(1, round(minutes * 60))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days:02d}:{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def world_size(trainer: dict) -> int:
    devices = trainer.get("devices", "auto")
    nodes = trainer.get("num_nodes", 1)
    if isinstance(devices, (list, tuple)):
        count = len(devices)
    elif isinstance(devices, int) and devices > 0:
        count = devices
    elif isinstance(devices, str) and devices.strip().isdigit():
        count = int(devices)
    else:  # "auto" or -1: every visible GPU when the run would use them
        count = _visible_gpus() if uses_gpu(trainer) else 1
    return max(1, count) * (nodes if isinstance(nodes, int) and nodes > 0 else 1)


def _visible_gpus() -> int:
    import torch

    return max(1, torch.cuda.device_count())


def run_state(run: Run) -> tuple:
    """("done", result path) | ("resume", last.ckpt) | ("new", None)."""
    result = run.folder / RESULT
    if result.is_file():
        return "done", result
    checkpoint = latest_checkpoint(run.folder)
    return ("resume", checkpoint) if checkpoint is not None else ("new", None)


def latest_checkpoint(folder: Path) -> Optional[Path]:
    versions = sorted((int(d.name.split("_", 1)[1]), d) for d in folder.glob("version_*")
                      if d.name.split("_", 1)[1].isdigit())
    for _, run_dir in reversed(versions):
        if (run_dir / "checkpoints" / "last.ckpt").is_file():
            return run_dir / "checkpoints" / "last.ckpt"
    return None


def describe_budget(run: Run) -> str:
    r = run.recipe
    if "max_time" in r.trainer:
        return f"until {r.trainer['max_time']} (DD:HH:MM:SS) of training"
    kimg = Clock.of(r).kimg_at(r.train.steps)
    return f"{r.train.steps} generator steps, {kimg:g} kimg"


def describe_plan(suite: Suite, runs: list, out: Path) -> str:
    lines = [f"suite {suite.name}: {len({r.variant.name for r in runs})} variants x "
             f"{len(suite.seeds)} seeds = {len(runs)} runs, budget {suite.describe_budget()}",
             f"protocol: {suite.describe_eval()}",
             f"output: {Path(out) / suite.name}"]
    width = max(len(r.label) for r in runs)
    for run in runs:
        state, where = run_state(run)
        shown = {"done": "done, skipped", "resume": f"resume from {where}",
                 "new": "new"}[state]
        if state == "done":
            try:
                key = settings_difference(run, suite, json.loads(where.read_text()).get("settings"))
            except (OSError, ValueError):
                key = "its result.json is unreadable"
            if key is not None:
                shown = f"done under other settings ({key}): a real run stops here"
        lines.append(f"  {run.label:<{width}}  {describe_budget(run)}; "
                     f"{run.recipe.loss['name']} loss, G {run.recipe.model.generator['name']}, "
                     f"D {run.recipe.model.discriminator['name']}; {shown}")
    return "\n".join(lines)


def settings(run: Run, suite: Suite) -> dict:
    """What a result depends on: a finished run is reused only under the same settings."""
    return {"recipe": run.recipe.to_dict(), "eval": suite.eval.as_dict()}


def check_same_settings(run: Run, suite: Suite, result_path: Path) -> None:
    try:
        stored = json.loads(result_path.read_text()).get("settings")
    except (OSError, ValueError):
        raise GansError(f"{result_path} is unreadable; delete it to redo the evaluation (the "
                        "run resumes from its last.ckpt)") from None
    key = settings_difference(run, suite, stored)
    if key is not None:
        raise GansError(f"{result_path} was made under other settings ({key} differs from the "
                        "suite's); delete that result.json to train on from last.ckpt under the "
                        "new settings, or give the suite another name")


def settings_difference(run: Run, suite: Suite, stored: Optional[dict]) -> Optional[str]:
    """The first key where a result's stored settings differ from the suite's now; None if
    they agree."""
    now = json.loads(json.dumps(settings(run, suite)))
    defaults = {"recipe": validate({}).to_dict(), "eval": EvalSpec().as_dict()}
    now = _without_added_defaults(now, stored or {}, json.loads(json.dumps(defaults)))
    return None if stored == now else _first_difference(stored or {}, now)


def _without_added_defaults(now: Any, stored: Any, defaults: Any) -> Any:
    """`now` less the keys that `stored` lacks and that hold their default: a key a later gans
    added (at its default) does not make a finished run's settings differ."""
    if not (isinstance(now, dict) and isinstance(stored, dict)):
        return now
    defaults = defaults if isinstance(defaults, dict) else {}
    return {key: _without_added_defaults(value, stored.get(key), defaults.get(key))
            for key, value in now.items()
            if key in stored or key not in defaults or value != defaults[key]}


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
    return prefix.rstrip(".") or "the result"
