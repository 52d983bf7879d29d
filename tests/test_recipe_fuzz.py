"""Malformed recipes, generated: every one ends in exit 0 or in exit 2 with one error line.

The recipes are mutations of recipes/quickstart.yaml made tiny (a folder of eight 16x16 images,
one training step, no FID), so that a mutation that happens to be valid trains in seconds.
`gans recipe` (validation only) takes the bulk; `gans train` a few dozen, each checked to have
written nothing when it fails. Run with -s to see how many cases were tried.
"""

import copy
import io
import tempfile
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from PIL import Image

from conftest import REPO
from gans.cli import main
from gans.errors import GansError
from gans.recipe import load_recipe

RECIPE_EXAMPLES = 500  # per test below that runs `gans recipe`
TRAIN_EXAMPLES = 40
TRIED = {"recipe": 0, "train": 0}
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True, database=None)

QUICKSTART = yaml.safe_load((REPO / "recipes" / "quickstart.yaml").read_text())
TRAINER = {"accelerator": "cpu", "devices": 1, "precision": "32-true",
           "enable_progress_bar": False, "enable_model_summary": False}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "images"
    root.mkdir()
    generator = torch.Generator().manual_seed(0)
    for i in range(8):
        pixels = torch.randint(0, 256, (16, 16, 3), generator=generator, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(root / f"{i}.png")
    return root


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print(f"\nrecipe fuzz: {TRIED['recipe']} cases through `gans recipe`, "
          f"{TRIED['train']} through `gans train` ({sum(TRIED.values())} in all)")


def base_recipe(root: Path) -> dict:
    raw = copy.deepcopy(QUICKSTART)
    raw["model"]["generator"].update(latent_dim=8, width=8)
    raw["model"]["discriminator"]["width"] = 8
    raw["data"] = {"name": "folder", "root": str(root), "split": "train", "resolution": 16,
                   "channels": 3}
    raw["train"].update(steps=1, batch_size=4, checkpoint_every=1, sample_every=1,
                        sample_grid=4, log_every=1)
    raw["trainer"] = dict(TRAINER)
    raw["metrics"].update(fid_every=0)
    return raw


def paths(node, prefix=()):
    """(path, is_section) for every key of a recipe, depth first."""
    for key, value in node.items():
        yield prefix + (key,), isinstance(value, dict)
        if isinstance(value, dict):
            yield from paths(value, prefix + (key,))


BASE_PATHS = list(paths(base_recipe(Path("/images"))))
SECTIONS = [()] + [p for p, section in BASE_PATHS if section]
LEAVES = [p for p, section in BASE_PATHS if not section]
SIZES = [("train", k) for k in ("steps", "batch_size", "n_critic", "checkpoint_every",
                                "sample_every", "sample_grid", "log_every")] + [
    ("data", "resolution"), ("data", "limit"), ("data", "num_workers"), ("data", "channels"),
    ("metrics", "fid_batch_size"), ("metrics", "fid_every"), ("metrics", "fid_num_fake"),
    ("model", "generator", "latent_dim"), ("model", "generator", "width"),
    ("model", "discriminator", "width"), ("optim", "generator", "lr"),
    ("loss", "gamma"), ("train", "ema"), ("seed",)]
NAMES = [("model", "generator", "name"), ("model", "discriminator", "name"),
         ("loss", "name"), ("data", "name")]

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=True, allow_infinity=True), text)
anything = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.one_of(text, st.integers(), st.booleans()), inner, max_size=3)),
    max_leaves=6)
# Names that look like a registry entry, a dotted import path, or neither.
registry_names = st.one_of(
    text, st.from_regex(r"\A[a-z_.]{0,12}\.[A-Za-z_]{0,10}\Z"),
    st.sampled_from([".", "..", "x.", ".x", "os.", "os.path", "math.pi", "builtins.print",
                     "torch.Tensor", "collections.OrderedDict", "gans", "gans.models.dcgan",
                     "no_such_module.Net", "dcgan ", "DCGAN", "non_saturating"]))


def get(raw, path):
    for key in path:
        raw = raw[key]
    return raw


def put(raw, path, value):
    """Set raw[path] = value, making or replacing whatever is on the way."""
    node = raw
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


@st.composite
def mutated(draw, root: Path, kinds=None) -> dict:
    """The tiny base recipe with one to three mutations."""
    raw = base_recipe(root)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(kinds or ["unknown key", "wrong type", "wrong nesting",
                                              "unknown name", "bad size", "drop"]))
        event(kind)
        if kind == "unknown key":
            section = draw(st.sampled_from(SECTIONS))
            node = get(raw, section) if _is_path(raw, section) else raw
            node = node if isinstance(node, dict) else raw
            node[draw(st.one_of(text, st.integers(), st.booleans()))] = draw(anything)
        elif kind == "wrong type":
            put(raw, draw(st.sampled_from(LEAVES + SECTIONS[1:])), draw(anything))
        elif kind == "wrong nesting":
            source = draw(st.sampled_from(LEAVES + SECTIONS[1:]))
            if not _is_path(raw, source):
                continue
            value = get(raw, source)
            how = draw(st.sampled_from(["up", "down", "into list", "swap"]))
            if how == "up":
                put(raw, source[-1:], value)
            elif how == "down":
                put(raw, source + (draw(text),), value)
            elif how == "into list":
                put(raw, source, [value])
            else:
                put(raw, draw(st.sampled_from(SECTIONS[1:])), value)
        elif kind == "unknown name":
            put(raw, draw(st.sampled_from(NAMES)), draw(registry_names))
        elif kind == "bad size":
            put(raw, draw(st.sampled_from(SIZES)), draw(st.one_of(
                st.integers(-10**6, 0), st.sampled_from([-1, 0, 0.0, -0.5, float("nan"),
                                                         float("inf"), -float("inf"), 2**64]))))
        elif kind == "drop":
            path = draw(st.sampled_from(LEAVES + SECTIONS[1:]))
            if _is_path(raw, path[:-1]) and isinstance(get(raw, path[:-1]), dict):
                get(raw, path[:-1]).pop(path[-1], None)
    return raw


def _is_path(raw, path) -> bool:
    try:
        node = get(raw, path)
    except (KeyError, TypeError):
        return False
    return path == () or node is not None


def dump(raw) -> bytes:
    return yaml.safe_dump(raw, allow_unicode=True, sort_keys=False).encode()


def run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("always")  # a warning on the error path shows in stderr
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def check_recipe(files: dict) -> int:
    """Write `files` (name -> bytes, or None for a folder) and run `gans recipe recipe.yaml`."""
    TRIED["recipe"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.mkdir() if content is None else target.write_bytes(content)
        code, out, err = run(["recipe", str(Path(tmp) / "recipe.yaml")])
    assert_outcome(code, out, err, "recipe")
    if code == 0:
        assert yaml.safe_load(out)["train"]  # the resolved recipe was printed
    return code


def assert_outcome(code, out, err, command):
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith(f"gans {command}: error: "), err
        assert err.count("\n") == 1 and err.endswith("\n"), err
    elif command == "recipe":
        assert err == "", err
    if currently_in_test_context():
        event(f"exit {code}")


# ----------------------------------------------------------------------------- gans recipe


def test_the_unmutated_base_recipe_is_valid_and_trains(images, tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(dump(base_recipe(images)))
    assert check_recipe({"recipe.yaml": path.read_bytes()}) == 0
    assert tiny_and_local(path, images)
    code, _, err = run(["train", str(path), "--out", str(tmp_path / "runs")])
    assert code == 0, err


@settings(FUZZ, max_examples=RECIPE_EXAMPLES)
@given(data=st.data())
def test_mutated_recipes(images, data):
    check_recipe({"recipe.yaml": dump(data.draw(mutated(images)))})


@settings(FUZZ, max_examples=RECIPE_EXAMPLES)
@given(data=st.data())
def test_unknown_names_and_bad_sizes(images, data):
    check_recipe({"recipe.yaml": dump(data.draw(mutated(images, ["unknown name", "bad size"])))})


@settings(FUZZ, max_examples=RECIPE_EXAMPLES)
@given(content=st.one_of(
    st.binary(max_size=200),
    text.map(str.encode),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    anything.map(dump),  # a list, a scalar, or a mapping of nonsense
    st.sampled_from([b"", b"\xff\xfe\x00", b"key: [unclosed", b"a: b: c", b"\t- tab",
                     b"&a [*a]", b"&a {x: *a}", b"!!python/object:os.system {}",
                     b"? [a, b]\n: 1", b"train: &t {steps: *t}", b"%YAML 9.9\n---\na: 1",
                     b"---\na: 1\n---\nb: 2", b"\x00", b"seed: 1\x00",
                     b"a: " + b"[" * 60 + b"]" * 60, b"a: " + b"[" * 3000 + b"]" * 3000,
                     b"a: " + b"{a: " * 200 + b"1" + b"}" * 200,
                     b"a: &a [1, 2]\n" + b"".join(b"%c: &%c [*%c, *%c]\n" % (
                         98 + i, 98 + i, 97 + i, 97 + i) for i in range(24))])))
def test_text_that_is_not_a_recipe(content):
    check_recipe({"recipe.yaml": content})


@settings(FUZZ, max_examples=RECIPE_EXAMPLES)
@given(data=st.data())
def test_bad_extends(images, data):
    raw = data.draw(st.one_of(st.just({}), mutated(images)))
    kind = data.draw(st.sampled_from(["value", "missing", "self", "cycle", "bad base",
                                      "folder", "long"]))
    event(f"extends: {kind}")
    files = {}
    if kind == "value":
        raw["extends"] = data.draw(anything)
    elif kind == "missing":
        raw["extends"] = data.draw(text)
    elif kind == "self":
        raw["extends"] = data.draw(st.sampled_from(["recipe.yaml", "./recipe.yaml",
                                                    "sub/../recipe.yaml"]))
        files["sub"] = None
    elif kind == "cycle":
        raw["extends"] = "base.yaml"
        files["base.yaml"] = dump({"extends": "recipe.yaml", "seed": 1})
    elif kind == "bad base":
        raw["extends"] = "base.yaml"
        files["base.yaml"] = data.draw(st.one_of(
            st.binary(max_size=50), anything.map(dump),
            mutated(images).map(dump), st.just(b"- a list\n")))
    elif kind == "folder":
        raw["extends"] = data.draw(st.sampled_from(["", ".", "sub", "sub/", "/"]))
        files["sub"] = None
    else:
        raw["extends"] = data.draw(st.sampled_from(["x" * 300, "a/" * 3000 + "b.yaml",
                                                    "nul\x00byte.yaml", "~/nowhere.yaml"]))
    files["recipe.yaml"] = dump(raw)
    check_recipe(files)


@settings(FUZZ, max_examples=RECIPE_EXAMPLES // 2)
@given(overrides=st.lists(st.one_of(
    text, st.builds(lambda k, v: f"{k}={v}", st.sampled_from(
        [".".join(p) for p, _ in BASE_PATHS] + ["", ".", "a..b", "train.steps.x", "extends",
                                                "trainer.max_steps", "seed.x"]), text)),
    min_size=1, max_size=3))
def test_bad_overrides(images, overrides):
    TRIED["recipe"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_bytes(dump(base_recipe(images)))
        argv = ["recipe", str(path)]
        for item in overrides:
            argv.append(f"--set={item}")
        code, out, err = run(argv)
    assert_outcome(code, out, err, "recipe")


# ----------------------------------------------------------------------------- gans train


def tiny_and_local(path: Path, root: Path) -> bool:
    """A valid recipe that trains briefly on the fixture images and nothing else."""
    try:
        recipe = load_recipe(path)
    except GansError:
        return False
    return (recipe.data.name == "folder" and recipe.data.root == str(root)
            and recipe.train.steps * (recipe.train.n_critic + 1) <= 6
            and recipe.metrics.fid_every == 0
            and recipe.model.generator.get("latent_dim", 100) <= 64
            and recipe.data.resolution <= 32 and recipe.data.num_workers == 0
            and recipe.trainer == TRAINER and recipe.train.sample_grid <= 16
            and recipe.model.generator.get("width", 64) <= 16
            and recipe.model.discriminator.get("width", 64) <= 16)


@settings(FUZZ, max_examples=TRAIN_EXAMPLES)
@given(data=st.data())
def test_train_writes_nothing_for_a_bad_recipe(images, data):
    kinds = data.draw(st.sampled_from([None, ["bad size"], ["wrong type"], ["unknown key"]]))
    raw = data.draw(mutated(images, kinds))
    if data.draw(st.booleans()):  # the constructors' own keys: past the schema, into the model
        net = data.draw(st.sampled_from(["generator", "discriminator"]))
        key = data.draw(st.sampled_from(["latent_dim", "width", "norm", "spectral_norm"]))
        put(raw, ("model", net, key), data.draw(st.one_of(
            scalars, st.integers(-3, 0), st.sampled_from(["8", 8.5, True, [8], {"w": 8}]))))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_bytes(dump(raw))
        out = Path(tmp) / "runs"
        try:
            load_recipe(path)
        except GansError:
            valid = False
        else:
            valid = True
            if not tiny_and_local(path, images):
                event("valid but not tiny: not trained")
                return
        TRIED["train"] += 1
        code, _, err = run(["train", str(path), "--out", str(out)])
        assert_outcome(code, "", err, "train")
        if code == 2:
            written = [p for p in out.rglob("*")] if out.exists() else []
            assert written == [], written
        else:
            assert valid and any(out.iterdir())


def test_the_fuzzing_ran():
    assert TRIED["recipe"] >= RECIPE_EXAMPLES and TRIED["train"] >= 1, TRIED


# ----------------------------------------------------------------------------- found by fuzzing


@pytest.mark.parametrize("change, fragment", [
    ({"model": {"generator": {"name": "."}}}, "needs a module and a name"),
    ({"model": {"generator": {"name": "..x"}}}, "needs a module and a name"),
    ({"model": {"generator": {"name": "a..b"}}}, "cannot import module"),
    ({"model": {"generator": {"name": "os.path"}}}, "not a class"),
    ({"model": {"discriminator": {"name": "math.pi"}}}, "not a class"),
    ({"data": {"name": "os.path"}}, "not a function"),
    ({"loss": {"name": "math.pi"}}, "not a gans objective"),
    ({"train": {"steps\nx": 1}}, "'train.steps\\nx'"),
    ({"trainer": {"a\tb": 1}}, "'trainer.a\\tb'"),
    ({"optim": {"generator": {"lr": float("nan")}}}, "finite number"),
    ({"loss": {"gamma": float("inf")}}, "finite number"),
    ({"seed": -1}, "0..4294967295"),
    ({"seed": 2**64}, "0..4294967295"),
    ({"name": "../elsewhere"}, "names the run folder"),
    ({"name": ""}, "names the run folder"),
    ({"model": {"generator": {"latent_dim": True}}}, "must be an integer"),
    ({"model": {"discriminator": {"width": "8"}}}, "must be an integer"),
    ({"model": {"discriminator": {"spectral_norm": 1}}}, "true or false"),
    ({"extends": "x" * 300}, "not found"),
    ({"extends": "."}, "is a folder"),
])
def test_found_by_fuzzing(images, change, fragment):
    from gans.recipe import deep_merge

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_bytes(dump(deep_merge(base_recipe(images), change)))
        code, out, err = run(["recipe", str(path)])
    assert_outcome(code, out, err, "recipe")
    assert code == 2 and fragment in err, err


@pytest.mark.parametrize("content, fragment", [
    (b"&a {x: *a}", "inside its own value"),
    (b"a: " + b"[" * 3000 + b"]" * 3000, "nests too deeply"),
    (b"a: &a [1, 2]\n" + b"".join(b"%c: &%c [*%c, *%c]\n" % (98 + i, 98 + i, 97 + i, 97 + i)
                                  for i in range(24)), "expands to more than"),
])
def test_yaml_structure_found_by_fuzzing(content, fragment):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_bytes(content)
        code, out, err = run(["recipe", str(path)])
    assert_outcome(code, out, err, "recipe")
    assert code == 2 and fragment in err, err


@pytest.mark.parametrize("generator", [{"latent_dim": 0}, {"width": 0}, {"width": -1}])
def test_networks_that_build_but_cannot_run(images, tmp_path, generator):
    raw = base_recipe(images)
    raw["model"]["generator"].update(generator)
    path = tmp_path / "recipe.yaml"
    path.write_bytes(dump(raw))
    out = tmp_path / "runs"
    code, _, err = run(["train", str(path), "--out", str(out)])
    assert_outcome(code, "", err, "train")
    assert code == 2 and "model.generator" in err
    assert not out.exists()
