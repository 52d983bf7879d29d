"""`gans bench SUITE.yaml`: GAN variants under one budget and several seeds; tables and plots.

A suite file names a base recipe (or one recipe per variant), the variants as overrides, the
seeds, one budget shared by every run and the evaluation protocol (docs/benchmarks.md has every
key). Each (variant, seed) is an ordinary `gans train` run in

    <out>/<suite>/<variant>/seed<k>/version_<n>/     the run (checkpoints, TensorBoard, samples)
    <out>/<suite>/<variant>/seed<k>/result.json      written last, atomically: the run is done

Runs go one after another in this process. A run with result.json is skipped; one with a
last.ckpt but no result.json resumes from it. When the runs are done, every finished run of the
suite goes into results.csv (one row per run), results.json, results.md (mean ± std over seeds,
one row per variant) and two plots, FID against kimg and against wall-clock time.

FID during training comes from the recipe's metrics section (set from the suite's `eval`); best
and final figures come from `gans eval` of checkpoints/best.ckpt and last.ckpt under the same
protocol. Wall-clock time is read from the TensorBoard event files, one file per training
session, so the time a run spent stopped between a kill and its resume is not counted.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from gans.errors import GansError
from gans.files import atomic_write, ensure_writable_folder
from gans.hardware import cpu_name, uses_gpu
from gans.recipe import Recipe, apply_override, deep_merge, read_yaml, validate
from gans.runlog import RunLog, read_run
from gans.training.clock import Clock

SUITE_KEYS = ("name", "description", "base", "common", "variants", "grid", "seeds", "budget",
              "eval", "thresholds", "reference_fid_source", "watts", "extends")
BUDGET_KEYS = ("steps", "kimg", "minutes")
EVAL_KEYS = ("every", "num_fake", "track_num_fake", "num_real", "reference", "metrics",
             "batch_size")
EVAL_METRICS = ("fid", "kid", "pr", "dc", "coverage")
VARIANT_OWN_KEYS = ("recipe", "set", "reference_fid")
RECIPE_SECTIONS = tuple(f.name for f in dataclasses.fields(Recipe)
                        if f.name not in ("name", "seed"))
# Recipe keys the suite sets for every run, and where the suite sets them.
OWNED = {"name": "the run folder (seed<k>)", "seed": "the suite's seeds",
         "train.steps": "the suite's budget", "trainer.max_time": "the suite's budget",
         "metrics.fid_every": "eval.every",
         "metrics.fid_num_fake": "eval.track_num_fake (or eval.num_fake)",
         "metrics.fid_num_real": "eval.num_real", "metrics.fid_reference_split": "eval.reference",
         "metrics.fid_batch_size": "eval.batch_size"}
UNLIMITED_STEPS = 10 ** 9  # a time budget: Lightning's max_time stops the run first
RESULT = "result.json"
MAX_EXTENDS = 8
RESULT_VERSION = 1


@dataclass
class EvalSpec:
    every: Any = 0  # generator steps, or {"kimg": K}
    num_fake: int = 10000
    # Generated images per FID during training; None = num_fake. Fewer make the curve and the
    # choice of best.ckpt cheaper and noisier; best and last are evaluated with num_fake.
    track_num_fake: Optional[int] = None
    num_real: Optional[int] = 10000
    reference: str = "test"
    metrics: tuple = ("fid", "kid")
    batch_size: int = 50

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "metrics": list(self.metrics)}


@dataclass
class Variant:
    name: str
    source: str  # the recipe file it starts from
    raw: dict  # the recipe with the variant's overrides, before the suite's own keys
    reference_fid: Optional[list] = None  # [mean] or [mean, std] from the literature


@dataclass
class Run:
    variant: Variant
    seed: int
    recipe: Recipe
    folder: Path  # <out>/<suite>/<variant>/seed<k>

    @property
    def label(self) -> str:
        return f"{self.variant.name} seed {self.seed}"


@dataclass
class Suite:
    path: Path
    name: str
    variants: list
    seeds: list
    budget: tuple  # (kind, value)
    eval: EvalSpec
    thresholds: list = field(default_factory=list)
    description: str = ""
    reference_fid_source: str = ""
    watts: Optional[float] = None

    def describe_budget(self) -> str:
        kind, value = self.budget
        return {"steps": f"{value:g} generator steps", "kimg": f"{value:g} kimg (thousands of "
                "real images shown to D)", "minutes": f"{value:g} minutes of training"}[kind]

    def describe_eval(self) -> str:
        every = self.eval.every
        when = ("FID not tracked during training" if not every else
                f"FID every {every['kimg']:g} kimg" if isinstance(every, dict) else
                f"FID every {every} generator steps")
        tracked = self.eval.track_num_fake
        if every and tracked and tracked != self.eval.num_fake:
            when += f" from {tracked} generated images"
        real = "all" if self.eval.num_real is None else str(self.eval.num_real)
        return (f"{when}; final {', '.join(self.eval.metrics)} of best.ckpt and last.ckpt from "
                f"{self.eval.num_fake} generated images; against {real} real images of the "
                f"{self.eval.reference} split")


# ----------------------------------------------------------------------------- loading


def load_suite(path: Path) -> Suite:
    """Read and check a suite file and every recipe it makes; nothing is written."""
    path = Path(path)
    raw = _read_suite(path)
    src = str(path)
    unknown = [k for k in raw if k not in SUITE_KEYS]
    if unknown:
        raise GansError(f"{src}: unknown key {_show_key(unknown[0])} in the suite; allowed: "
                        f"{', '.join(SUITE_KEYS)}")
    name = raw.get("name", path.stem)
    _check_name(name, f"{src}: key 'name'")
    for key in ("description", "reference_fid_source"):
        if not isinstance(raw.get(key, ""), str):
            raise GansError(f"{src}: key '{key}' must be a string")
    seeds = _seeds(raw.get("seeds", [0]), src)
    budget = _budget(raw.get("budget"), src)
    spec = _eval(raw.get("eval"), src)
    thresholds = _thresholds(raw.get("thresholds", []), src)
    watts = raw.get("watts")
    if watts is not None and not (_is_number(watts) and watts > 0):
        raise GansError(f"{src}: key 'watts' must be a positive number (average power of the "
                        f"device, W) or null for the built-in estimate, got {watts!r}")
    base_raw = _base(raw.get("base"), path, "base") if raw.get("base") is not None else None
    common = _overrides(raw.get("common"), f"{src}: key 'common'")
    variants = _variants(raw, path, base_raw, common)
    return Suite(path=path, name=name, variants=variants, seeds=seeds, budget=budget, eval=spec,
                 thresholds=thresholds, description=raw.get("description", ""),
                 reference_fid_source=raw.get("reference_fid_source", ""),
                 watts=float(watts) if watts is not None else None)


def _read_suite(path: Path, depth: int = 0) -> dict:
    """A suite file with the suites it `extends` merged in. Unlike a recipe's, a suite's
    budget is replaced whole and the parent's recipe paths follow the child."""
    data = read_yaml(path, "bench suite", f"keys ({', '.join(SUITE_KEYS)})")
    if "extends" not in data:
        return data
    parent_name = data.pop("extends")
    if not isinstance(parent_name, str) or not parent_name:
        raise GansError(f"{path}: key 'extends' must be the path of another suite file, relative "
                        "to this one")
    if depth >= MAX_EXTENDS:
        raise GansError(f"{path}: more than {MAX_EXTENDS} suites extend each other (a loop?); "
                        "shorten the chain of 'extends'")
    parent_path = path.parent / parent_name
    if not parent_path.is_file():
        raise GansError(f"{path}: key 'extends': {parent_path} not found (the path is relative "
                        "to the suite that extends it)")
    parent = _read_suite(parent_path, depth + 1)
    # The parent's recipe paths are relative to the parent; make them relative to this file.
    def rebase(name: Any) -> Any:
        return os.path.relpath(parent_path.parent / name, path.parent) \
            if isinstance(name, str) else name
    if "base" in parent:
        parent["base"] = rebase(parent["base"])
    for spec in (parent.get("variants") or {}).values() \
            if isinstance(parent.get("variants"), dict) else ():
        if isinstance(spec, dict) and "recipe" in spec:
            spec["recipe"] = rebase(spec["recipe"])
    parent.pop("name", None)  # a suite's name is its own: results of the two must not mix
    if "budget" in data:
        parent.pop("budget", None)  # one budget, replaced whole (kimg here, steps there)
    return deep_merge(parent, data)


def _check_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not name.strip() or name in (".", "..") or "/" in name \
            or "\\" in name or name.startswith(".") or not name.isprintable() \
            or len(name.encode()) > 120:
        raise GansError(f"{where} names a folder: give a non-empty name without '/' or a "
                        f"leading '.' (at most 120 bytes), got {name!r}")


def _show_key(key: Any) -> str:
    text = str(key)
    return repr(text) if text.isprintable() else repr(repr(text)[1:-1])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _seeds(value: Any, src: str) -> list:
    if not isinstance(value, list) or not value or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= 2 ** 32 - 1
            for s in value):
        raise GansError(f"{src}: key 'seeds' must be a non-empty list of integers in "
                        f"0..4294967295, e.g. [0, 1, 2]; got {value!r}")
    if len(set(value)) != len(value):
        raise GansError(f"{src}: key 'seeds' repeats a seed ({value}); list each once")
    return list(value)


def _budget(value: Any, src: str) -> tuple:
    if not isinstance(value, dict) or len(value) != 1:
        got = "none" if not value else (", ".join(map(str, value)) if isinstance(value, dict)
                                        else repr(value))
        raise GansError(f"{src}: key 'budget' needs exactly one of steps, kimg, minutes "
                        f"(e.g. budget: {{kimg: 1200}}); got {got}")
    (kind, amount), = value.items()
    if kind not in BUDGET_KEYS:
        raise GansError(f"{src}: unknown key 'budget.{kind}'; allowed: {', '.join(BUDGET_KEYS)}")
    if not _is_number(amount) or amount <= 0 or (kind == "steps" and not isinstance(amount, int)):
        what = "a positive integer" if kind == "steps" else "a positive number"
        raise GansError(f"{src}: key 'budget.{kind}' must be {what}, got {amount!r}")
    return kind, amount


def _eval(value: Any, src: str) -> EvalSpec:
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise GansError(f"{src}: key 'eval' must be a mapping with keys {', '.join(EVAL_KEYS)}")
    unknown = [k for k in value if k not in EVAL_KEYS]
    if unknown:
        raise GansError(f"{src}: unknown key 'eval.{unknown[0]}'; allowed: {', '.join(EVAL_KEYS)}")
    spec = EvalSpec(**{k: v for k, v in value.items() if k != "metrics"})
    every = spec.every
    if isinstance(every, dict):
        if list(every) != ["kimg"] or not _is_number(every["kimg"]) or every["kimg"] <= 0:
            raise GansError(f"{src}: key 'eval.every' must be generator steps (an integer, 0 = "
                            f"only the final evaluation) or {{kimg: K}} with K > 0; got {every!r}")
    elif not isinstance(every, int) or isinstance(every, bool) or every < 0:
        raise GansError(f"{src}: key 'eval.every' must be generator steps (an integer, 0 = only "
                        f"the final evaluation) or {{kimg: K}}; got {every!r}")
    for key, low in (("num_fake", 2), ("batch_size", 1)):
        got = getattr(spec, key)
        if not isinstance(got, int) or isinstance(got, bool) or got < low:
            raise GansError(f"{src}: key 'eval.{key}' must be an integer of at least {low}, "
                            f"got {got!r}")
    if spec.track_num_fake is not None and (not isinstance(spec.track_num_fake, int) or isinstance(
            spec.track_num_fake, bool) or spec.track_num_fake < 2):
        raise GansError(f"{src}: key 'eval.track_num_fake' must be an integer of at least 2, or "
                        f"null for eval.num_fake; got {spec.track_num_fake!r}")
    if spec.num_real is not None and (not isinstance(spec.num_real, int)
                                      or isinstance(spec.num_real, bool) or spec.num_real < 2):
        raise GansError(f"{src}: key 'eval.num_real' must be an integer of at least 2, or null "
                        f"for the whole reference split; got {spec.num_real!r}")
    if spec.reference not in ("train", "test"):
        raise GansError(f"{src}: key 'eval.reference' must be train or test (the split of the "
                        f"recipe's dataset), got {spec.reference!r}")
    metrics = value.get("metrics", ["fid", "kid"])
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",")]
    if not isinstance(metrics, list) or not metrics or "fid" not in metrics or any(
            m not in EVAL_METRICS for m in metrics):
        raise GansError(f"{src}: key 'eval.metrics' must be a list from {', '.join(EVAL_METRICS)}"
                        f" that includes fid; got {metrics!r}")
    spec.metrics = tuple(dict.fromkeys(metrics))
    return spec


def _thresholds(value: Any, src: str) -> list:
    if not isinstance(value, list) or not all(_is_number(t) and t > 0 for t in value):
        raise GansError(f"{src}: key 'thresholds' must be a list of positive FID values, "
                        f"e.g. [100, 50, 30]; got {value!r}")
    return sorted(set(float(t) for t in value), reverse=True)


def _base(name: Any, suite: Path, key: str) -> dict:
    """A recipe file (relative to the suite) -> its resolved recipe as plain data."""
    from gans.recipe import load_recipe

    if not isinstance(name, str) or not name:
        raise GansError(f"{suite}: key '{key}' must be the path of a recipe file, relative to "
                        "the suite file")
    path = suite.parent / name
    if not path.is_file():
        raise GansError(f"{suite}: key '{key}': recipe {path} not found (the path is relative "
                        "to the suite file)")
    return {"source": str(path), "raw": load_recipe(path).to_dict()}


def _overrides(value: Any, where: str) -> dict:
    """Overrides as a nested mapping, from a mapping or a list of "a.b=c" strings."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return deep_merge({}, value)
    if not isinstance(value, list):
        raise GansError(f"{where} must be a mapping of recipe keys or a list of \"a.b=c\" "
                        f"strings, got {type(value).__name__}")
    out: dict = {}
    for item in value:
        apply_override(out, item, where=f"{where}: {item!r}")
    return out


def _set_dotted(raw: dict, key: str, value: Any, where: str) -> None:
    node = raw
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise GansError(f"{where}: {'.'.join(parts[:depth + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def _dotted_keys(mapping: dict, prefix: str = "") -> list:
    keys = []
    for k, v in mapping.items():
        keys.append(prefix + str(k))
        if isinstance(v, dict):
            keys.extend(_dotted_keys(v, f"{prefix}{k}."))
    return keys


def _check_not_owned(overrides: dict, where: str) -> None:
    for key in _dotted_keys(overrides):
        if key in OWNED:
            raise GansError(f"{where} sets {key}, which {OWNED[key]} sets for every run; "
                            "remove it there")


def _variants(raw: dict, path: Path, base: Optional[dict], common: dict) -> list:
    src = str(path)
    _check_not_owned(common, f"{src}: key 'common'")
    specs = raw.get("variants")
    grid = raw.get("grid")
    if specs is None and grid is None:
        raise GansError(f"{src}: a suite needs 'variants' (name: overrides) or 'grid' "
                        "(key.path: [values]), or both")
    if specs is not None and (not isinstance(specs, dict) or not specs):
        raise GansError(f"{src}: key 'variants' must map each variant name to its overrides "
                        "(a mapping, or a list of \"a.b=c\"), e.g. variants: {wgan-gp: "
                        "{loss: {name: wgan-gp}}}")
    points = _grid(grid, src)
    variants = []
    for (name, spec), (point_name, point) in itertools.product(
            (specs or {"": {}}).items(), points):
        full = ",".join(n for n in (str(name), point_name) if n)
        where = f"{src}: variant {full!r}"
        _check_name(full, where)
        if isinstance(spec, list) or spec is None:
            spec = {"set": spec or []}
        if not isinstance(spec, dict):
            raise GansError(f"{where} must be a mapping of overrides or a list of \"a.b=c\"")
        unknown = [k for k in spec if k not in VARIANT_OWN_KEYS + RECIPE_SECTIONS]
        if unknown:
            hint = (f"; {OWNED[unknown[0]]} sets it" if unknown[0] in OWNED else "")
            raise GansError(f"{where}: unknown key {_show_key(unknown[0])}{hint}; allowed: "
                            f"{', '.join(VARIANT_OWN_KEYS + RECIPE_SECTIONS)}")
        if spec.get("recipe") is not None:
            start = _base(spec["recipe"], path, f"variants.{name}.recipe")
        elif base is not None:
            start = base
        else:
            raise GansError(f"{where} has no recipe: give the suite a 'base' recipe or the "
                            "variant a 'recipe' (paths relative to the suite file)")
        mapping = {k: v for k, v in spec.items() if k in RECIPE_SECTIONS}
        listed = _overrides(spec.get("set"), f"{where}, key 'set'")
        for overrides in (mapping, listed, point):
            _check_not_owned(overrides, where)
        recipe_raw = start["raw"]
        for overrides in (common, mapping, listed, point):
            recipe_raw = deep_merge(recipe_raw, overrides)
        variants.append(Variant(full, start["source"], recipe_raw,
                                _reference_fid(spec.get("reference_fid"), where)))
    return variants


def _grid(grid: Any, src: str) -> list:
    """[(name suffix, overrides)] for every point of the grid; one empty point without one."""
    if grid is None:
        return [("", {})]
    if not isinstance(grid, dict) or not grid or not all(
            isinstance(v, list) and v for v in grid.values()):
        raise GansError(f"{src}: key 'grid' must map recipe keys to non-empty lists of values, "
                        "e.g. grid: {optim.generator.lr: [1.0e-4, 2.0e-4]}")
    points = []
    for values in itertools.product(*grid.values()):
        overrides: dict = {}
        for key, value in zip(grid, values):
            _set_dotted(overrides, str(key), value, f"{src}: key 'grid'")
        points.append((",".join(f"{k}={v}" for k, v in zip(grid, values)), overrides))
    return points


def _reference_fid(value: Any, where: str) -> Optional[list]:
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    if not 1 <= len(values) <= 2 or not all(_is_number(v) and v >= 0 for v in values):
        raise GansError(f"{where}: key 'reference_fid' must be a number or [mean, std] "
                        f"(a published figure), got {value!r}")
    return [float(v) for v in values]


# ----------------------------------------------------------------------------- planning


def plan(suite: Suite, out: Path, only: Optional[list] = None) -> list:
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
    checkpoint = _latest_checkpoint(run.folder)
    return ("resume", checkpoint) if checkpoint is not None else ("new", None)


def _latest_checkpoint(folder: Path) -> Optional[Path]:
    versions = sorted((int(d.name.split("_", 1)[1]), d) for d in folder.glob("version_*")
                      if d.name.split("_", 1)[1].isdigit())
    for _, run_dir in reversed(versions):
        if (run_dir / "checkpoints" / "last.ckpt").is_file():
            return run_dir / "checkpoints" / "last.ckpt"
    return None


# ----------------------------------------------------------------------------- running


def run_suite(path: Path, out: Path, only: Optional[list] = None, dry_run: bool = False,
              watts: Optional[float] = None) -> int:
    """Check the suite, do its unfinished runs, then write the tables and plots."""
    if watts is not None and not (math.isfinite(watts) and watts > 0):
        raise GansError(f"--watts must be a positive number (average power in W), got {watts}")
    suite = load_suite(path)
    runs = plan(suite, out, only)
    if dry_run:
        print(describe_plan(suite, runs, out))
        return 0
    states = [run_state(run) for run in runs]
    for run, (state, where) in zip(runs, states):  # before any training: a mismatch stops all
        if state == "done":
            _check_same_settings(run, suite, where)
    folder = Path(out) / suite.name
    ensure_writable_folder(folder, "pass --out with a writable folder")
    for i, (run, (state, where)) in enumerate(zip(runs, states), 1):
        prefix = f"gans bench: [{i}/{len(runs)}] {run.label}"
        if state == "done":
            print(f"{prefix}: finished earlier, skipped ({where})", file=sys.stderr)
            continue
        print(f"{prefix}: " + (f"resuming from {where}" if state == "resume" else
                               f"training ({describe_budget(run)})"), file=sys.stderr)
        result = execute(run, suite, resume=where, watts=watts if watts is not None
                         else suite.watts)
        print(f"{prefix}: {result['status']}, best FID {_fmt(result['best'].get('fid'), 2)}, "
              f"final FID {_fmt(result['final'].get('fid'), 2)}", file=sys.stderr)
    paths = write_outputs(suite, out)
    print((folder / "results.md").read_text(), end="")
    print("\n".join(str(p) for p in paths))
    return 0


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
                     f"{run.recipe.loss.name} loss, G {run.recipe.model.generator['name']}, "
                     f"D {run.recipe.model.discriminator['name']}; {shown}")
    return "\n".join(lines)


def settings(run: Run, suite: Suite) -> dict:
    """What a result depends on: a finished run is reused only under the same settings."""
    return {"recipe": run.recipe.to_dict(), "eval": suite.eval.as_dict()}


def _check_same_settings(run: Run, suite: Suite, result_path: Path) -> None:
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


def execute(run: Run, suite: Suite, resume: Optional[Path] = None,
            watts: Optional[float] = None) -> dict:
    """Train (or resume) one run, evaluate best and last, write its result.json."""
    from gans.module import TrainingDiverged
    from gans.train import train

    peak = PeakMemory()
    status, message = "finished", None
    started = time.monotonic()
    try:
        run_dir = train(run.recipe, run.folder.parent, resume=resume)
    except TrainingDiverged as diverged:
        # A diverged run is a result, as in Lucic et al.: its last good state is evaluated.
        status, message = "diverged", str(diverged)
        checkpoint = _latest_checkpoint(run.folder)
        run_dir = checkpoint.parent.parent if checkpoint is not None else None
    session_seconds = time.monotonic() - started
    eval_started = time.monotonic()
    best, final = {}, {}
    if run_dir is not None:
        last = run_dir / "checkpoints" / "last.ckpt"
        final = _evaluate(last, suite.eval, run.seed)
        best_ckpt = run_dir / "checkpoints" / "best.ckpt"
        if not best_ckpt.is_file():
            best = {**final, "note": "no best.ckpt (FID not tracked during training): the last "
                    "checkpoint"}
        elif _global_step(best_ckpt) == _global_step(last):
            # The same weights: FID's 2048x2048 matrix square root costs seconds on a CPU.
            best = {**final, "checkpoint": best_ckpt.name, "note": "best.ckpt is the last step"}
        else:
            best = _evaluate(best_ckpt, suite.eval, run.seed)
    eval_seconds = time.monotonic() - eval_started
    log = read_run(run_dir) if run_dir is not None else RunLog(())
    train_seconds = log.seconds or session_seconds
    r = run.recipe
    clock = Clock.of(r)
    curve = [[step, clock.kimg_at(step), seconds, value]
             for step, seconds, value in log.curve("fid")]
    steps = clock.g_steps(_global_step(run_dir / "checkpoints" / "last.ckpt")) \
        if run_dir is not None else 0
    device = describe_device(r.trainer)
    device_seconds = train_seconds + eval_seconds
    power, method = power_estimate(device, watts)
    result = {
        "version": RESULT_VERSION,
        "suite": suite.name, "variant": run.variant.name, "seed": run.seed,
        "status": status, "message": message,
        "run_dir": os.path.relpath(run_dir, run.folder) if run_dir is not None else None,
        "generator_steps": steps, "kimg": clock.kimg_at(steps),
        "train_seconds": train_seconds, "eval_seconds": eval_seconds,
        "images_per_sec": _median(v for _, _, v in log.curve("images_per_sec")),
        "peak_memory_mib": peak.read_mib(),
        "peak_memory_kind": peak.kind,
        "peak_gpu_memory_mib": peak.gpu_mib() if device["kind"] == "cuda" else None,
        "device": device["name"], "devices": device["count"],
        "device_hours": device["count"] * device_seconds / 3600,
        "energy_kwh": power * device["count"] * device_seconds / 3.6e6,
        "energy_method": method,
        "fid_curve": curve,
        "best": best, "final": final,
        "settings": settings(run, suite),
    }
    text = json.dumps(result, indent=2, default=str) + "\n"
    atomic_write(run.folder / RESULT, lambda f: f.write(text.encode()))
    return result


def _evaluate(checkpoint: Path, spec: EvalSpec, seed: int) -> dict:
    from gans.evaluate import EvalOptions, evaluate

    figures = evaluate(checkpoint, EvalOptions(
        metrics=spec.metrics, num_fake=spec.num_fake, reference=spec.reference,
        num_real=spec.num_real, batch_size=spec.batch_size, seed=seed))
    out: dict = {"checkpoint": checkpoint.name}
    for name, figure in figures.items():
        out[name] = figure["value"]
        if "std" in figure:
            out[f"{name}_std"] = figure["std"]
    fid = figures["fid"]
    out["protocol"] = {k: fid[k] for k in ("extractor", "weights_sha256", "num_fake", "num_real",
                                           "reference", "resize", "seed") if k in fid}
    return out


def _global_step(checkpoint: Path) -> int:
    from gans.sampling import read_checkpoint

    return read_checkpoint(checkpoint)["global_step"]


def _median(values) -> Optional[float]:
    values = [v for v in values if math.isfinite(v)]
    return statistics.median(values) if values else None


class PeakMemory:
    """Peak resident memory of this process from now on.

    Linux lets a process reset its high-water mark (/proc/self/clear_refs, "5"), so each run of a
    suite gets its own peak; elsewhere ru_maxrss, the peak since the process started, is all
    there is, and the result says so.
    """

    def __init__(self):
        self.kind = "process peak since start (ru_maxrss)"
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.kind = "peak during this run (VmHWM)"
        except OSError:
            pass
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
        except RuntimeError:
            pass

    def read_mib(self) -> float:
        try:
            text = Path("/proc/self/status").read_text()
            match = re.search(r"VmHWM:\s+(\d+) kB", text)
            if match and self.kind.startswith("peak during"):
                return int(match.group(1)) / 1024
        except OSError:
            pass
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2 ** 20 if sys.platform == "darwin" else rss / 1024  # bytes vs KiB

    @staticmethod
    def gpu_mib() -> Optional[float]:
        import torch

        return torch.cuda.max_memory_allocated() / 2 ** 20 if torch.cuda.is_available() else None


# ----------------------------------------------------------------------------- time and energy


# W per core: a server part's TDP over its cores, a desktop part's likewise. An estimate, used
# only where no --watts is given; docs/benchmarks.md says how to read it.
CPU_WATTS_PER_CORE = (("EPYC", 5.6, "AMD EPYC 9554: 360 W / 64 cores"),
                      ("Xeon", 6.3, "Intel Xeon Platinum 8480+: 350 W / 56 cores"),
                      ("Apple", 2.5, "Apple M2: about 20 W / 8 cores"))
CPU_WATTS_DEFAULT = (10.0, "a desktop CPU, e.g. AMD Ryzen 9 7950X: 170 W / 16 cores")
GPU_WATTS = (("H200", 700), ("H100 PCIe", 350), ("H100", 700), ("A100-PCIE", 250),
             ("A100", 400), ("L40S", 350), ("L4", 72), ("A10", 150), ("T4", 70), ("V100", 300),
             ("4090", 450), ("3090", 350))
GPU_WATTS_DEFAULT = 300


def describe_device(trainer: dict) -> dict:
    import torch

    if uses_gpu(trainer):
        return {"kind": "cuda", "name": torch.cuda.get_device_name(0), "count": 1,
                "threads": None}
    threads = torch.get_num_threads()
    plural = "s" if threads != 1 else ""
    return {"kind": "cpu", "name": f"{cpu_name()} ({threads} thread{plural})", "count": 1,
            "cpu": cpu_name(), "threads": threads}


def power_estimate(device: dict, watts: Optional[float]) -> tuple:
    """(W, how it was found). Energy is this times device time: an estimate, not a reading."""
    if watts is not None:
        return watts, f"{watts:g} W given (--watts or the suite's watts) x device time"
    if device["kind"] == "cuda":
        limit = _gpu_power_limit()
        if limit is not None:
            return limit, (f"estimate: the GPU's board power limit ({limit:g} W, nvidia-smi) x "
                           "device time; an upper bound")
        for key, w in GPU_WATTS:
            if key.lower() in device["name"].lower():
                return float(w), (f"estimate: {device['name']} board power {w} W (table in "
                                  "gans/bench.py) x device time; an upper bound")
        return float(GPU_WATTS_DEFAULT), (f"estimate: {GPU_WATTS_DEFAULT} W for an unknown GPU "
                                          "x device time; pass --watts for a better figure")
    per_core, why = next(((w, why) for key, w, why in CPU_WATTS_PER_CORE
                          if key.lower() in device["cpu"].lower()), CPU_WATTS_DEFAULT)
    total = per_core * device["threads"]
    return total, (f"estimate: {device['threads']} CPU threads x {per_core:g} W per core "
                   f"({why}; table in gans/bench.py) x device time; CPU only, no RAM")


def _gpu_power_limit() -> Optional[float]:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        text = subprocess.run(["nvidia-smi", "--query-gpu=power.limit",
                               "--format=csv,noheader,nounits", "-i", "0"],
                              capture_output=True, text=True, timeout=20).stdout
        return float(text.strip().splitlines()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


# ----------------------------------------------------------------------------- results


def collect(suite: Suite, out: Path) -> list:
    """Every finished run of the suite on disk, in suite order (whatever --only ran now), made
    under the suite's present settings; one made under others is left out, with a warning."""
    results = []
    for run in plan(suite, out):
        path = run.folder / RESULT
        if not path.is_file():
            continue
        try:
            result = json.loads(path.read_text())
        except ValueError:
            raise GansError(f"{path} is not valid JSON; delete it to redo that run's "
                            "evaluation") from None
        key = settings_difference(run, suite, result.get("settings"))
        if key is not None:
            print(f"gans bench: {path} was made under other settings ({key} differs from the "
                  "suite's): left out of the tables; delete it to redo that run", file=sys.stderr)
            continue
        results.append(result)
    return results


def run_row(result: dict, thresholds: list) -> dict:
    """One flat row of results.csv."""
    row = {"variant": result["variant"], "seed": result["seed"], "status": result["status"]}
    for which in ("best", "final"):
        for key, value in result.get(which, {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row[f"{which}_{key}"] = value
    for t in thresholds:
        hit = next((p for p in result["fid_curve"] if p[3] <= t), None)
        row[f"kimg_to_fid_{t:g}"] = hit[1] if hit else None
        row[f"minutes_to_fid_{t:g}"] = hit[2] / 60 if hit else None
    row.update({"generator_steps": result["generator_steps"], "kimg": result["kimg"],
                "train_minutes": result["train_seconds"] / 60,
                "eval_minutes": result["eval_seconds"] / 60,
                "images_per_sec": result["images_per_sec"],
                "peak_memory_mib": result["peak_memory_mib"],
                "peak_gpu_memory_mib": result["peak_gpu_memory_mib"],
                "device": result["device"], "device_hours": result["device_hours"],
                "energy_kwh": result["energy_kwh"]})
    return row


def summarize(suite: Suite, results: list) -> dict:
    """Per variant: for each numeric column, mean, std (when more than one seed) and count."""
    rows = [run_row(r, suite.thresholds) for r in results]
    summary = {}
    for variant in suite.variants:
        mine = [row for row in rows if row["variant"] == variant.name]
        if not mine:
            continue
        columns = {}
        for key in dict.fromkeys(k for row in mine for k in row):
            if key in ("variant", "seed", "status", "device"):
                continue
            values = [row.get(key) for row in mine]
            numbers = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
            columns[key] = {"mean": statistics.fmean(numbers) if numbers else None,
                            "std": statistics.stdev(numbers) if len(numbers) > 1 else None,
                            "n": len(numbers)}
        summary[variant.name] = {"runs": len(mine),
                                 "diverged": sum(row["status"] == "diverged" for row in mine),
                                 "seeds": [row["seed"] for row in mine],
                                 "reference_fid": variant.reference_fid, **columns}
    return summary


def write_outputs(suite: Suite, out: Path) -> list:
    folder = Path(out) / suite.name
    results = collect(suite, out)
    rows = [run_row(r, suite.thresholds) for r in results]
    summary = summarize(suite, results)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    methods = sorted({r["energy_method"] for r in results})
    document = {"suite": suite.name, "description": suite.description,
                "budget": dict([suite.budget]), "seeds": suite.seeds,
                "eval": suite.eval.as_dict(), "thresholds": suite.thresholds,
                "protocol": suite.describe_eval(), "energy_method": methods,
                "variants": summary,
                "runs": [{k: v for k, v in r.items() if k != "settings"} for r in results]}
    outputs = {
        "results.csv": buffer.getvalue(),
        "results.json": json.dumps(document, indent=2, default=str) + "\n",
        "results.md": markdown(suite, results, summary),
    }
    paths = []
    for name, text in outputs.items():
        atomic_write(folder / name, lambda f, text=text: f.write(text.encode()))
        paths.append(folder / name)
    for name, x in (("fid_vs_kimg.png", "kimg"), ("fid_vs_time.png", "minutes")):
        png = plot(suite, results, x)
        atomic_write(folder / name, lambda f, png=png: f.write(png))
        paths.append(folder / name)
    return paths


def _fmt(value: Optional[float], digits: int) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if digits < 0:  # significant figures, for quantities that span orders of magnitude
        return f"{value:.{-digits}g}"
    return f"{value:.{digits}f}"


def _cell(column: Optional[dict], digits: int, runs: int) -> str:
    if not column or column["mean"] is None:
        return "–"
    text = _fmt(column["mean"], digits)
    if column["std"] is not None:
        text += f" ± {_fmt(column['std'], digits)}"
    if column["n"] < runs:
        text += f" ({column['n']}/{runs})"
    return text


def markdown(suite: Suite, results: list, summary: dict) -> str:
    devices = sorted({r["device"] for r in results})
    methods = sorted({r["energy_method"] for r in results})
    has_kid = any("kid" in r.get("best", {}) for r in results)
    has_reference = any(v.reference_fid for v in suite.variants)
    header = ["variant", "runs", "best FID", "final FID"]
    if has_reference:
        header.append("paper FID")
    if has_kid:
        header += ["best KID", "final KID"]
    for t in suite.thresholds:
        header += [f"kimg to FID ≤ {t:g}", f"min to FID ≤ {t:g}"]
    header += ["kimg", "train min", "img/s", "peak MiB", "device-hours", "energy Wh"]
    lines = [f"# {suite.name}", ""]
    if suite.description:
        lines += [suite.description.strip(), ""]
    lines += [f"- budget: {suite.describe_budget()} per run; seeds: "
              f"{', '.join(map(str, suite.seeds))}",
              f"- protocol: {suite.describe_eval()}",
              f"- device: {'; '.join(devices) or '–'}",
              f"- energy: {'; '.join(methods) or '–'}",
              "- cells: mean ± sample std over seeds; (n/k) where only n of k runs have the "
              "figure; best = best.ckpt by the FID tracked during training"]
    if has_reference and suite.reference_fid_source:
        lines.append(f"- paper FID: {suite.reference_fid_source}")
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in suite.variants:
        s = summary.get(variant.name)
        if s is None:
            continue
        runs = s["runs"]
        shown = f"{runs}" + (f" ({s['diverged']} diverged)" if s["diverged"] else "")
        cells = [variant.name, shown, _cell(s.get("best_fid"), 2, runs),
                 _cell(s.get("final_fid"), 2, runs)]
        if has_reference:
            ref = variant.reference_fid
            cells.append("–" if not ref else " ± ".join(f"{v:g}" for v in ref))
        if has_kid:
            cells += [_cell(s.get("best_kid"), 4, runs), _cell(s.get("final_kid"), 4, runs)]
        for t in suite.thresholds:
            cells += [_cell(s.get(f"kimg_to_fid_{t:g}"), 1, runs),
                      _cell(s.get(f"minutes_to_fid_{t:g}"), 1, runs)]
        energy = s.get("energy_kwh")
        energy_wh = dict(energy, mean=energy["mean"] * 1000 if energy["mean"] is not None
                         else None, std=energy["std"] * 1000 if energy["std"] is not None
                         else None) if energy else None
        cells += [_cell(s.get("kimg"), 1, runs), _cell(s.get("train_minutes"), 1, runs),
                  _cell(s.get("images_per_sec"), 0, runs),
                  _cell(s.get("peak_memory_mib"), 0, runs),
                  _cell(s.get("device_hours"), -3, runs), _cell(energy_wh, -3, runs)]
        lines.append("| " + " | ".join(cells) + " |")
    missing = [f"{v.name} seed {seed}" for v in suite.variants for seed in suite.seeds
               if not any(r["variant"] == v.name and r["seed"] == seed for r in results)]
    if missing:
        lines += ["", f"Not run yet: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def plot(suite: Suite, results: list, x: str) -> bytes:
    """FID tracked during training against kimg or minutes: per variant, the mean over seeds
    at each evaluation (a band of ± one std with several seeds)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    column = 1 if x == "kimg" else 2
    drawn = False
    for variant in suite.variants:
        by_step: dict = {}
        for r in results:
            if r["variant"] == variant.name:
                for point in r["fid_curve"]:
                    by_step.setdefault(point[0], []).append(point)
        if not by_step:
            continue
        steps = sorted(by_step)
        xs = [statistics.fmean(p[column] for p in by_step[s]) / (60 if x == "minutes" else 1)
              for s in steps]
        ys = [statistics.fmean(p[3] for p in by_step[s]) for s in steps]
        line, = ax.plot(xs, ys, marker="o", markersize=3, label=variant.name)
        spread = [statistics.stdev(p[3] for p in by_step[s]) if len(by_step[s]) > 1 else 0.0
                  for s in steps]
        if any(spread):
            ax.fill_between(xs, [y - d for y, d in zip(ys, spread)],
                            [y + d for y, d in zip(ys, spread)], color=line.get_color(),
                            alpha=0.2, linewidth=0)
        drawn = True
    for t in suite.thresholds:
        ax.axhline(t, color="grey", linestyle=":", linewidth=0.8)
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no FID tracked during training (eval.every: 0)",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("kimg (real images shown to D, thousands)" if x == "kimg"
                  else "wall-clock minutes of training (FID evaluations included)")
    ax.set_xlim(left=0)
    ax.set_ylabel("FID")
    ax.set_title(f"{suite.name}: FID during training", fontsize=10)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
