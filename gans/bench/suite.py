"""The suite file: its keys, their checks, and the variants it makes.

A suite names a base recipe (or one per variant), the variants as overrides (a mapping, a list
of "a.b=c", or the points of a grid), the seeds, one budget and the evaluation protocol; it may
extend another suite. `load_suite` reads and checks all of it, and every recipe it makes, before
anything is written. docs/benchmarks.md has every key.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from gans.errors import GansError
from gans.recipe import INCEPTION_BATCH_SIZE, Recipe, apply_override, deep_merge, read_yaml

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
MAX_EXTENDS = 8


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
    batch_size: int = INCEPTION_BATCH_SIZE

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "metrics": list(self.metrics)}


@dataclass
class Variant:
    name: str
    source: str  # the recipe file it starts from
    raw: dict  # the recipe with the variant's overrides, before the suite's own keys
    reference_fid: Optional[list] = None  # [mean] or [mean, std] from the literature


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
