"""YAML recipe -> validated `Recipe`.

A recipe is plain data. Loading merges `extends:` bases, applies `--set a.b=c` overrides, then
checks every key against the dataclasses below (types, ranges, registered names, constructor
and Trainer signatures). Every problem is a one-line `GansError` naming the file, the key and
what is allowed, raised before anything is written.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from gans.errors import GansError, RecipeError


@dataclass
class ModelSection:
    generator: dict = field(default_factory=lambda: {"name": "dcgan"})
    discriminator: dict = field(default_factory=lambda: {"name": "dcgan"})


@dataclass
class OptimizerSection:
    lr: float = 2e-4
    betas: list = field(default_factory=lambda: [0.5, 0.999])
    weight_decay: float = 0.0


@dataclass
class OptimSection:
    generator: OptimizerSection = field(default_factory=OptimizerSection)
    discriminator: OptimizerSection = field(default_factory=OptimizerSection)
    implementation: str = "foreach"  # Adam's kernels: for-loop, foreach or fused (same maths)
    # Learning-rate decay, the same for both networks: from `decay_start` (a fraction of
    # train.steps) to the last step, linear or cosine from each lr to lr * final_lr_scale.
    schedule: str = "constant"
    decay_start: float = 0.0
    final_lr_scale: float = 0.0


@dataclass
class DataSection:
    name: str = "fashion-mnist"
    root: Optional[str] = None  # where to look first (and download to, when online)
    split: str = "train"
    resolution: int = 32
    channels: int = 1
    limit: Optional[int] = None  # use only the first N images (quick experiments, tests)
    num_workers: int = 0
    conditional: bool = False  # class-conditional G and D, with the dataset's classes
    source: Optional[str] = None  # the dataset a derived one (edges) is made from
    # A folder's labels file (CSV or StyleGAN2-ADA's dataset.json), relative to data.root;
    # without it a conditional folder takes its classes from its subfolders.
    labels: Optional[str] = None
    # The class names in label order. A conditional run records them here (so its checkpoint
    # samples by name without the data); a resumed run checks that the data still has them.
    classes: Optional[list] = None


@dataclass
class AugmentSection:
    policy: list = field(default_factory=list)  # of color, translation, cutout; empty = off
    p: Optional[float] = None  # chance per image and transform; null: 1, or 0 to start ADA from
    ada_target: Optional[float] = None  # adapt p to keep E[sign(D(real))] here (0.6); null = fixed
    ada_interval: int = 4  # discriminator steps between adjustments of p
    ada_kimg: float = 100.0  # thousands of images for p to move by 1 at most
    # Where gradient penalties (R1, R2) take D's input gradient: at the augmented images D
    # sees, or at the original ones through the augmentation (StyleGAN2-ADA's choice).
    penalties_at: str = "augmented"


@dataclass
class TrainSection:
    steps: int = 2000  # generator updates
    batch_size: int = 64
    n_critic: int = 1  # discriminator updates (one batch each) per generator update
    ema: float = 0.999  # EMA decay of the sampling generator; 0 turns EMA off
    # The decay after n generator steps is at most (1 + n) / (ema_ramp + n): the average spans
    # about the last n / (ema_ramp - 1) steps until `ema` takes over.
    ema_ramp: float = 10.0
    checkpoint_every: int = 500  # generator steps between writes of checkpoints/last.ckpt
    # Also keep checkpoints/step-NNNNNNN.ckpt at each of those steps: any point of the run can
    # be sampled or evaluated later (FID against time: benchmarks/fid_vs_minutes.py).
    keep_checkpoints: bool = False
    sample_every: int = 250  # generator steps between fixed-z grids
    sample_grid: int = 64  # images in each grid
    log_every: int = 10  # generator steps between scalar logs
    on_nan: str = "stop"  # a NaN/inf loss or gradient: stop, or rollback to the last checkpoint
    nan_retries: int = 3  # rollbacks at most, each halving both learning rates
    compile: bool = False  # torch.compile the training G and D (not the EMA copy)
    channels_last: bool = False  # G and D weights (hence activations) in NHWC memory layout
    # The G update on fresh latents (Goodfellow et al.'s Algorithm 1), or on the fakes of the
    # D update of the same batch (one G forward fewer; docs/models.md has the comparison).
    g_fresh_latents: bool = False
    # BigGAN's standing statistics: before the sampling generator makes images or is saved,
    # its BatchNorm statistics are recomputed from its own outputs on this many fixed latents
    # (0 keeps the running averages, which the EMA copy takes from the training generator).
    standing_statistics: int = 0


# Images per Inception forward wherever features are extracted (training's FID tracking, gans
# eval, gans bench): on a 2-core CPU 16 ran at 1.11x the images/s of 50 in training's own path,
# 32 in between (docs/performance.md). The features do not depend on it.
INCEPTION_BATCH_SIZE = 16


@dataclass
class MetricsSection:
    fid_every: int = 0  # generator steps between FID evaluations; 0 turns tracking off
    fid_num_fake: int = 1000
    fid_num_real: int = 5000
    fid_reference_split: str = "train"
    fid_batch_size: int = INCEPTION_BATCH_SIZE
    inception_weights: Optional[str] = None  # a local file in torch-fidelity's layout
    inception_precision: str = "fp32"  # fp32, or bf16 (autocast): faster, FID moves slightly
    inception_compile: bool = False  # torch.compile with freezing: faster after a one-off compile


@dataclass
class Recipe:
    name: str = "run"
    seed: int = 0
    model: ModelSection = field(default_factory=ModelSection)
    # The objective (gans/objectives/): `name` plus that objective's own keys, checked against
    # its constructor like model.generator; the resolved recipe lists every key's value.
    loss: dict = field(default_factory=lambda: {"name": "non-saturating"})
    optim: OptimSection = field(default_factory=OptimSection)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    train: TrainSection = field(default_factory=TrainSection)
    trainer: dict = field(default_factory=dict)
    metrics: MetricsSection = field(default_factory=MetricsSection)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, path: Union[str, Path], overrides: Optional[list] = None) -> "Recipe":
        """Read, merge (`extends:`) and validate a recipe file; `overrides` are "a.b=c" strings,
        as `--set` takes them. Any problem is a one-line `RecipeError`."""
        return load_recipe(path, overrides)

    def to_yaml(self) -> str:
        """The resolved recipe as YAML (what `gans recipe` prints and a run saves)."""
        return dump(self)


# Trainer arguments that the recipe owns elsewhere: setting them in `trainer:` would fight it.
TRAINER_KEYS_OWNED = {
    "max_steps": "train.steps",
    "max_epochs": "train.steps",
    "logger": "the run directory (--out)",
    "callbacks": "train.checkpoint_every / train.sample_every",
    "default_root_dir": "--out",
    "enable_checkpointing": "train.checkpoint_every",
    "log_every_n_steps": "train.log_every",
    "plugins": "nothing (gans sets its checkpoint writer)",
    "use_distributed_sampler": "nothing (gans shards the data itself, resumably)",
}

ADAM_IMPLEMENTATIONS = ("for-loop", "foreach", "fused")
LR_SCHEDULES = ("constant", "linear", "cosine")
INCEPTION_PRECISIONS = ("fp32", "bf16")
PENALTY_INPUTS = ("augmented", "original")

POSITIVE_INTS = {
    "train.steps", "train.batch_size", "train.n_critic", "train.checkpoint_every",
    "train.sample_every", "train.sample_grid", "train.log_every", "data.resolution",
    "metrics.fid_batch_size", "augment.ada_interval",
}
NON_NEGATIVE = {"train.nan_retries", "train.standing_statistics", "metrics.fid_every",
                "data.num_workers", "optim.generator.weight_decay",
                "optim.discriminator.weight_decay"}


# ----------------------------------------------------------------------------- loading


def _recipe_errors(function):
    # The checks raise GansError; from the entry points they leave as RecipeError, so that a
    # caller can tell a bad recipe from a missing checkpoint or a failed run.
    @functools.wraps(function)
    def checked(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except RecipeError:
            raise
        except GansError as exc:
            raise RecipeError(str(exc)) from None

    return checked


@_recipe_errors
def load_recipe(path: Union[str, Path], overrides: Optional[list] = None) -> Recipe:
    """Read, merge and validate a recipe file; `overrides` are "a.b=c" strings."""
    path = Path(path)
    raw = _read_with_extends(path, seen=())
    raw.setdefault("name", path.stem)
    return validate(apply_overrides(raw, overrides), source=str(path))


@_recipe_errors
def apply_overrides(raw: dict, overrides: Optional[list]) -> dict:
    """A copy of `raw` with each "a.b=c" applied (c parsed as YAML)."""
    raw = deep_merge({}, raw)
    for item in overrides or []:
        apply_override(raw, item)
    return raw


RECIPE_HOLDS = "sections (model, loss, optim, data, augment, train, trainer, metrics, seed)"


def read_yaml(path: Path, what: str = "recipe", holds: str = RECIPE_HOLDS) -> dict:
    """One YAML file as a mapping: the reader of every YAML file gans takes (recipes, bench
    suites). Each failure is a GansError that names the file and `what` it is; `holds` says
    what the mapping should contain. An empty file is an empty mapping; `extends` is left to
    the caller, whose merge rules differ."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise GansError(f"{path}: {what} file not found; check the path") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise GansError(f"{path}: cannot read {what} ({exc.__class__.__name__}); "
                        "pass a readable YAML file") from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:  # PyYAML parses nesting recursively
        raise GansError(f"{path}: the YAML nests too deeply; a {what} has at most "
                        f"{MAX_DEPTH} levels") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise GansError(f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    check_anchors(data, path, what)
    if not isinstance(data, dict):
        raise GansError(f"{path}: a {what} must be a mapping of {holds}, "
                        f"got {type(data).__name__}")
    return data


MAX_NODES = 100_000  # far beyond any recipe; anchors nested in anchors can exceed it
MAX_DEPTH = 50  # likewise; it keeps the recursive merge and checks within Python's stack


def check_anchors(data: Any, path: Path, what: str = "recipe") -> None:
    """YAML anchors may make a value contain itself, or expand exponentially; either would
    hang the merge and the checks that walk the recipe. So would a very deep nesting."""
    sizes: dict = {}

    def size(node: Any, inside: frozenset) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        if id(node) in inside:
            raise GansError(f"{path}: a YAML anchor (&name) is used inside its own value; "
                            "write that value out instead of the alias (*name)")
        if len(inside) >= MAX_DEPTH:
            raise GansError(f"{path}: the YAML nests more than {MAX_DEPTH} levels deep; "
                            f"a {what} needs a few")
        if id(node) not in sizes:
            children = node.values() if isinstance(node, dict) else node
            sizes[id(node)] = 1 + sum(size(c, inside | {id(node)}) for c in children)
            if sizes[id(node)] > MAX_NODES:
                raise GansError(f"{path}: the {what} expands to more than {MAX_NODES} values "
                                "(aliases of aliases); write it without nested anchors")
        return sizes[id(node)]

    size(data, frozenset())


def _read_with_extends(path: Path, seen: tuple) -> dict:
    resolved = path.resolve()
    if resolved in seen:
        raise GansError(f"{path}: 'extends' forms a cycle; remove one of the extends")
    data = read_yaml(path)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str):
        raise GansError(f"{path}: key 'extends' must be a path to a recipe (a string)")
    base_path = (path.parent / base_name)
    try:
        kind = "folder" if base_path.is_dir() else "file" if base_path.exists() else None
    except OSError:  # a name too long for the file system, say
        kind = None
    if kind is None:
        raise GansError(f"{path}: key 'extends': {_printable(base_path)} not found "
                        "(the path is relative to the recipe that extends it)")
    if kind == "folder":
        raise GansError(f"{path}: key 'extends': {_printable(base_path)} is a folder; "
                        "name a recipe file")
    base = _read_with_extends(base_path, seen + (resolved,))
    base.pop("name", None)  # a run is named after the recipe the user chose, not its base
    return deep_merge(base, data)


def deep_merge(base: dict, top: dict) -> dict:
    """`top` over `base`, recursively; neither input is modified."""
    out = {k: deep_merge({}, v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = deep_merge({}, value) if isinstance(value, dict) else value
    return out


def apply_override(raw: dict, item: str, where: Optional[str] = None) -> None:
    """Set one "a.b=c" in `raw` (c parsed as YAML); errors start with `where` (the --set flag
    by default, or a bench suite's key)."""
    where = where or f"--set {item!r}"
    if not isinstance(item, str) or "=" not in item:
        raise GansError(f"{where}: expected key.path=value, e.g. train.steps=100")
    key, _, text = item.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise GansError(f"{where}: empty key; expected key.path=value")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise GansError(f"{where}: the value is not valid YAML; quote it") from None
    node = raw
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise GansError(f"{where}: {'.'.join(parts[:depth + 1])} is not a section")
        node = child
    node[parts[-1]] = value


# ----------------------------------------------------------------------------- validation


@_recipe_errors
def validate(raw: dict, source: str = "<recipe>") -> Recipe:
    recipe = _build(Recipe, raw, prefix="", source=source)
    _check_ranges(recipe, source)
    _check_names(recipe, source)
    _check_trainer(recipe.trainer, source)
    return recipe


def _build(cls, raw: Any, prefix: str, source: str):
    if not isinstance(raw, dict):
        raise GansError(f"{source}: key '{prefix.rstrip('.')}' must be a section (a mapping), "
                        f"got {_type_name(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in raw if k not in fields]
    if unknown:
        where = f"section '{prefix.rstrip('.')}'" if prefix else "the top level"
        raise GansError(f"{source}: unknown key '{prefix}{_printable(unknown[0])}' in "
                        f"{where}; allowed: {', '.join(fields)}")
    kwargs = {}
    for name, value in raw.items():
        hint = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value if value is not None else {}, key + ".", source)
        else:
            kwargs[name] = _coerce(value, hint, key, source)
            if hint is dict and fields[name].default_factory is not dataclasses.MISSING:
                kwargs[name] = deep_merge(fields[name].default_factory(), kwargs[name])
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, options[0], key, source)
    if hint is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:  # YAML 1.1 reads 2e-4 as a string; a learning rate written that way is common
            number = float(value)
        except ValueError:
            number = None
        except OverflowError:
            number = math.inf
        if number is not None and not math.isfinite(number):
            raise GansError(f"{source}: key '{key}' must be a finite number, got {_shown(value)}")
        if number is not None:
            return number
    expected = {int: int, float: float, str: str, bool: bool, dict: dict, list: list}.get(hint, hint)
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if not ok:
        raise GansError(f"{source}: key '{key}' must be {_type_label(hint)}, "
                        f"got {_type_name(value)} {_shown(value)}")
    if hint is list:
        return [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                for v in value]
    return value


def _printable(value: Any) -> str:
    """A key or path as it can stand inside a one-line message."""
    text = str(value)
    return text if text.isprintable() else repr(text)[1:-1]


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _type_label(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            dict: "a mapping", list: "a list"}.get(hint, str(hint))


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "an integer",
            float: "a number", bool: "a boolean", type(None): "nothing"}.get(
        type(value), type(value).__name__)


def _check_ranges(recipe: Recipe, source: str) -> None:
    name = recipe.name
    if not name.strip() or name in (".", "..") or "/" in name or not name.isprintable() \
            or len(name.encode()) > 200:
        raise GansError(f"{source}: key 'name' names the run folder: give a non-empty name "
                        f"without '/' (at most 200 bytes), got {_shown(name)}")
    if not 0 <= recipe.seed <= 2**32 - 1:
        raise GansError(f"{source}: key 'seed' must be in 0..4294967295, got {recipe.seed}")
    flat = _flatten(recipe.to_dict())
    for key in POSITIVE_INTS:
        if flat[key] is not None and flat[key] < 1:
            raise GansError(f"{source}: key '{key}' must be at least 1, got {flat[key]}")
    for key in NON_NEGATIVE:
        if flat[key] < 0:
            raise GansError(f"{source}: key '{key}' must not be negative, got {flat[key]}")
    if recipe.data.limit is not None and recipe.data.limit < 1:
        raise GansError(f"{source}: key 'data.limit' must be at least 1 or null, "
                        f"got {recipe.data.limit}")
    if not 0.0 <= recipe.train.ema < 1.0:
        raise GansError(f"{source}: key 'train.ema' must be in [0, 1) (0 turns EMA off), "
                        f"got {recipe.train.ema}")
    if not recipe.train.ema_ramp > 1.0:
        raise GansError(f"{source}: key 'train.ema_ramp' must be above 1 (at 1 the average would "
                        f"never move; 10 is the default), got {recipe.train.ema_ramp}")
    if recipe.data.channels not in (1, 3):
        raise GansError(f"{source}: key 'data.channels' must be 1 or 3, "
                        f"got {recipe.data.channels}")
    if recipe.train.on_nan not in ("stop", "rollback"):
        raise GansError(f"{source}: key 'train.on_nan' must be stop or rollback, "
                        f"got {recipe.train.on_nan!r}")
    if recipe.optim.implementation not in ADAM_IMPLEMENTATIONS:
        raise GansError(f"{source}: key 'optim.implementation' must be "
                        f"{' or '.join(ADAM_IMPLEMENTATIONS)}, got {recipe.optim.implementation!r}")
    if recipe.optim.schedule not in LR_SCHEDULES:
        raise GansError(f"{source}: key 'optim.schedule' must be "
                        f"{' or '.join(LR_SCHEDULES)}, got {recipe.optim.schedule!r}")
    if not 0.0 <= recipe.optim.decay_start < 1.0:
        raise GansError(f"{source}: key 'optim.decay_start' must be in [0, 1) (the fraction of "
                        f"train.steps before the decay starts), got {recipe.optim.decay_start}")
    if not 0.0 <= recipe.optim.final_lr_scale <= 1.0:
        raise GansError(f"{source}: key 'optim.final_lr_scale' must be in [0, 1] (the last "
                        f"step's lr over the recipe's), got {recipe.optim.final_lr_scale}")
    if recipe.metrics.inception_precision not in INCEPTION_PRECISIONS:
        raise GansError(f"{source}: key 'metrics.inception_precision' must be "
                        f"{' or '.join(INCEPTION_PRECISIONS)}, "
                        f"got {recipe.metrics.inception_precision!r}")
    if recipe.data.split not in ("train", "test"):
        raise GansError(f"{source}: key 'data.split' must be train or test, "
                        f"got {recipe.data.split!r}")
    if recipe.data.labels is not None and recipe.data.name != "folder":
        raise GansError(f"{source}: key 'data.labels' names a labels file, which only "
                        f"data.name: folder reads; drop data.labels for {recipe.data.name!r}")
    classes = recipe.data.classes
    if classes is not None and (not classes or not all(isinstance(c, str) and c.strip()
                                                       for c in classes)
                                or len(set(classes)) != len(classes)):
        raise GansError(f"{source}: key 'data.classes' must be a list of distinct class names "
                        f"(quoted strings), got {_shown(classes)}; or leave it out (a run "
                        "fills it in from the data)")
    if recipe.metrics.fid_reference_split not in ("train", "test"):
        raise GansError(f"{source}: key 'metrics.fid_reference_split' must be train or test, "
                        f"got {recipe.metrics.fid_reference_split!r}")
    for net in ("generator", "discriminator"):
        opt = getattr(recipe.optim, net)
        if opt.lr <= 0:
            raise GansError(f"{source}: key 'optim.{net}.lr' must be positive, got {opt.lr}")
        if len(opt.betas) != 2 or not all(isinstance(b, float) and 0 <= b < 1 for b in opt.betas):
            raise GansError(f"{source}: key 'optim.{net}.betas' must be two numbers in [0, 1), "
                            f"got {opt.betas}")
    augment = recipe.augment
    from gans.registry import AUGMENTATIONS

    for name in augment.policy:
        if not isinstance(name, str):
            raise GansError(f"{source}: key 'augment.policy' has {_shown(name)}, not a transform "
                            f"name; allowed: {', '.join(AUGMENTATIONS.names())}")
        if not callable(AUGMENTATIONS.get(name, where=f"{source}: key 'augment.policy'")):
            raise GansError(f"{source}: key 'augment.policy' names {name!r}, which is not a "
                            f"function; allowed: {', '.join(AUGMENTATIONS.names())}")
    if augment.p is not None and not 0.0 <= augment.p <= 1.0:
        raise GansError(f"{source}: key 'augment.p' must be in [0, 1], got {augment.p}")
    if augment.ada_target is not None and not 0.0 < augment.ada_target < 1.0:
        raise GansError(f"{source}: key 'augment.ada_target' must be in (0, 1) (0.6 is usual) "
                        f"or null, got {augment.ada_target}")
    if augment.penalties_at not in PENALTY_INPUTS:
        raise GansError(f"{source}: key 'augment.penalties_at' must be "
                        f"{' or '.join(PENALTY_INPUTS)}, got {augment.penalties_at!r}")
    if augment.ada_kimg <= 0:
        raise GansError(f"{source}: key 'augment.ada_kimg' must be positive, got {augment.ada_kimg}")
    if recipe.metrics.fid_every and recipe.metrics.fid_num_fake < 2:
        raise GansError(f"{source}: key 'metrics.fid_num_fake' must be at least 2 (FID needs a "
                        f"covariance), got {recipe.metrics.fid_num_fake}")
    if recipe.metrics.fid_every and recipe.metrics.fid_num_real < 2:
        raise GansError(f"{source}: key 'metrics.fid_num_real' must be at least 2, "
                        f"got {recipe.metrics.fid_num_real}")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("trainer", "model", "loss"):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _check_names(recipe: Recipe, source: str) -> None:
    from gans import registry

    classes: dict = {}
    for net, reg in (("generator", registry.GENERATORS), ("discriminator", registry.DISCRIMINATORS)):
        spec = dict(getattr(recipe.model, net))
        key = f"model.{net}"
        name = spec.pop("name", None)
        if not isinstance(name, str):
            raise GansError(f"{source}: key '{key}.name' is required; "
                            f"known: {', '.join(reg.names())} (or a dotted path to a class)")
        cls = reg.get(name, where=f"{source}: key '{key}.name'")
        _check_kwargs(cls, spec, key, source)
        getattr(recipe.model, net).update(spec)  # numbers that YAML read as strings, as numbers
        classes[net] = cls
    objective = _check_objective(recipe, classes, source)
    # A dotted path can name any object; a data source must at least be callable.
    dataset = registry.DATASETS.get(recipe.data.name, where=f"{source}: key 'data.name'")
    if not callable(dataset):
        raise GansError(f"{source}: key 'data.name' names {recipe.data.name!r}, which is not a "
                        f"function; known: {', '.join(registry.DATASETS.names())}")
    _check_pairing(recipe, dataset, classes["generator"], objective, source)


def _check_pairing(recipe: Recipe, dataset, generator, objective, source: str) -> None:
    """Paired data (an input image per target) goes with an image-to-image generator and no
    augmentation; a pix2pix objective needs paired data; data.source only feeds derived data."""
    from gans.models.base import Translator, missing

    data = recipe.data
    paired = bool(getattr(dataset, "paired", False))
    if data.source is not None and not getattr(dataset, "derived", False):
        raise GansError(f"{source}: key 'data.source' is only read by derived datasets "
                        f"(edges); {data.name!r} takes none: remove data.source")
    if paired and missing(generator, Translator):
        raise GansError(f"{source}: data.name {data.name!r} is paired data, which needs an "
                        f"image-to-image generator (model.generator.name: unet), not "
                        f"{recipe.model.generator.get('name')!r}")
    if not paired and not missing(generator, Translator):
        raise GansError(f"{source}: model.generator {recipe.model.generator.get('name')!r} "
                        f"translates input images, and data.name {data.name!r} has none; use "
                        "paired data (data.name: edges or pairs)")
    if getattr(objective, "paired", False) and not paired:
        raise GansError(f"{source}: loss.name {recipe.loss['name']!r} compares outputs with "
                        f"their targets and needs paired data (data.name: edges or pairs), "
                        f"not {data.name!r}")
    if paired and data.conditional:
        raise GansError(f"{source}: data.conditional: paired data is conditioned on its input "
                        "images already; set data.conditional: false")
    if paired and recipe.train.standing_statistics:
        raise GansError(f"{source}: key 'train.standing_statistics' draws images from fixed "
                        "latents, and a paired model (pix2pix) has none; set it to 0")
    if paired and recipe.augment.policy:
        raise GansError(f"{source}: key 'augment.policy': augmenting the targets alone would "
                        "break their pairing with the inputs; set augment.policy: [] for "
                        "paired data")


def _check_objective(recipe: Recipe, classes: dict, source: str) -> None:
    """`loss.name` and its keys against the objective's constructor; the objective's needs
    against the models' interface; then every key the objective takes is filled in, so the
    resolved recipe says what ran."""
    from gans import registry
    from gans.models.base import describe, missing
    from gans.objectives.base import Objective
    from gans.objectives.base import ObjectiveKeyError

    spec = dict(recipe.loss)
    name = spec.pop("name", "non-saturating")
    if not isinstance(name, str):
        raise GansError(f"{source}: key 'loss.name' must be a string naming an objective; "
                        f"known: {', '.join(registry.OBJECTIVES.names())}")
    cls = registry.OBJECTIVES.get(name, where=f"{source}: key 'loss.name'")
    if not (isinstance(cls, type) and issubclass(cls, Objective)):
        raise GansError(f"{source}: key 'loss.name' names {name!r}, which is not a gans "
                        "objective (a subclass of gans.objectives.base.Objective); known: "
                        f"{', '.join(registry.OBJECTIVES.names())}")
    _check_kwargs(cls, spec, "loss", source)
    try:
        objective = cls(**spec)
    except ObjectiveKeyError as exc:
        raise GansError(f"{source}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise GansError(f"{source}: section 'loss' cannot build objective {name!r} "
                        f"({_first_line(exc)}); check its keys") from None
    for net, (protocol, key, off) in objective.requires.items():
        lacking = missing(classes[net], protocol)
        if lacking:
            raise GansError(f"{source}: key 'loss.{key}' needs {describe(protocol)} as "
                            f"model.{net}, and {getattr(recipe.model, net).get('name')!r} has "
                            f"no {', '.join(lacking)}; choose another model.{net} (e.g. "
                            f"stylegan-lite) or set loss.{key}: {off}")
    for key in objective.scheduled:
        if recipe.optim.schedule == "constant":
            raise GansError(f"{source}: key 'loss.{key}' decays along the learning-rate "
                            "schedule, and optim.schedule is constant; set optim.schedule: "
                            f"linear or cosine (with optim.decay_start), or loss.{key}: 1")
    defaults = {n: p.default for n, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty
                and isinstance(p.default, (int, float, bool, str))}
    recipe.loss = {"name": name, **defaults, **spec}
    return objective


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else exc.__class__.__name__


def _check_kwargs(cls, kwargs: dict, key: str, source: str) -> None:
    """Recipe kwargs against the constructor; the data section fills channels and resolution.

    A keyword whose default is a plain int, float, bool or str must get a value of that type:
    the constructor would otherwise fail (or train something else) only once training starts.
    """
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # not callable, or a builtin without a signature
        if callable(cls):
            return
        raise GansError(f"{source}: key '{key}.name' names {_shown(cls)}, which is not a class; "
                        "name a registered one or package.module.Class") from None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n in params if n not in ("self", "channels", "resolution")]
    for name, value in kwargs.items():
        if name not in allowed:
            hint = (" (set it in the data section)" if name in ("channels", "resolution") else "")
            # A --set of the name alone keeps the keys of the kind it replaces.
            switch = f" (to switch kinds, set the section whole: --set '{key}={{name: NAME}}')"
            raise GansError(f"{source}: unknown key '{key}.{_printable(name)}'{hint}; "
                            f"allowed for {getattr(cls, '__name__', cls)}: name, "
                            f"{', '.join(allowed)}{switch if not hint else ''}")
        expected = type(params[name].default)
        if expected is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                value = kwargs[name] = float(value)
            except ValueError:
                pass
        if expected is float and _is_a(value, float) and not math.isfinite(value):
            raise GansError(f"{source}: key '{key}.{name}' must be a finite number, "
                            f"got {_shown(value)}")
        if expected in (int, float, bool, str) and not _is_a(value, expected):
            raise GansError(f"{source}: key '{key}.{name}' must be {_type_label(expected)}, "
                            f"got {_type_name(value)} {_shown(value)}")


def _is_a(value: Any, expected: type) -> bool:
    if isinstance(value, bool):
        return expected is bool
    return isinstance(value, (int, float) if expected is float else expected)


def _check_trainer(trainer: dict, source: str) -> None:
    import pytorch_lightning as pl

    params = inspect.signature(pl.Trainer.__init__).parameters
    for name in trainer:
        if name in TRAINER_KEYS_OWNED:
            raise GansError(f"{source}: key 'trainer.{name}' is set by gans; "
                            f"use {TRAINER_KEYS_OWNED[name]} instead")
        if name not in params or name == "self":
            allowed = [p for p in params if p != "self" and p not in TRAINER_KEYS_OWNED]
            raise GansError(f"{source}: unknown key 'trainer.{_printable(name)}'; "
                            "lightning.Trainer accepts: "
                            f"{', '.join(allowed)}")


def dump(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe.to_dict(), sort_keys=False)


def as_recipe(source: Union[Recipe, dict, str, Path],
              overrides: Optional[list] = None) -> Recipe:
    """A validated Recipe from a Recipe, a plain mapping or a recipe file, with `overrides`
    ("a.b=c") applied: what every entry point that takes "a recipe" accepts."""
    if isinstance(source, (str, Path)):
        return load_recipe(source, overrides)
    if isinstance(source, Recipe):
        if not overrides:
            return source
        return validate(apply_overrides(source.to_dict(), overrides), source=source.name)
    if isinstance(source, dict):
        return validate(apply_overrides(source, overrides), source="<recipe mapping>")
    raise RecipeError(f"expected a Recipe, a mapping or a recipe file path, "
                      f"got {type(source).__name__}")
