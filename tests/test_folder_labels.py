"""Labelled folders: classes from subfolders or a labels file, conditional training on them,
and the class names travelling into checkpoints, sampling, evaluation and the explorer."""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from conftest import assert_resuming_is_one_run, tiny_recipe
from PIL import Image

from gans.cli import main
from gans.data import class_names, load_images
from gans.errors import GansError
from gans.recipe import DataSection
from gans.sampling.generate import resolve_class

CLASSES = ("circle", "square", "stripes")


def write_png(path, colour, size=16):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((size, size, 3), np.uint8)
    pixels[..., :] = colour
    Image.fromarray(pixels).save(path)


def labelled_folder(root, per_class=4):
    """CLASSES as subfolders (stripes' images partly one level deeper), one colour per class
    and a shade per image, so every image and its class can be told from its pixels."""
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            deeper = "nested/" if name == "stripes" and i % 2 else ""
            write_png(root / name / f"{deeper}{i}.png", (80 * c + 10 * i, 40, 200 - 60 * c))
    (root / "README.txt").write_text("not an image, and not a class")
    return root


def section(root, **keys):
    return DataSection(name="folder", root=str(root), resolution=16, channels=3, **keys)


def pixels_by_path(root):
    """The images under `root`, each read with Pillow on its own, in sorted path order: what
    the unconditional folder source has always returned."""
    paths = sorted(root.rglob("*.png"))
    return paths, torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB")))
                               .permute(2, 0, 1) for p in paths])


def test_subfolders_are_classes_and_images_keep_their_order(tmp_path):
    root = labelled_folder(tmp_path / "shapes")
    conditional = load_images(section(root, conditional=True))
    assert conditional.classes == CLASSES
    paths, expected = pixels_by_path(root)
    assert torch.equal(conditional.pixels, expected)
    # Each image's label is the subfolder directly under data.root, at any depth below it.
    assert conditional.labels.tolist() == [CLASSES.index(p.relative_to(root).parts[0])
                                           for p in paths]
    assert any(len(p.relative_to(root).parts) == 3 for p in paths)  # a nested image is in
    assert class_names(section(root, conditional=True)) == CLASSES


def test_unconditional_folder_is_unchanged(tmp_path):
    root = labelled_folder(tmp_path / "shapes")
    write_png(root / "loose.png", (1, 2, 3))  # fine without classes
    plain = load_images(section(root))
    _, expected = pixels_by_path(root)
    assert torch.equal(plain.pixels, expected)
    assert plain.labels is None and plain.classes == ()
    assert class_names(section(root)) == ()


def test_labels_csv(tmp_path):
    root = tmp_path / "flat"
    for i in range(6):
        write_png(root / ("sub" if i % 3 == 0 else "") / f"{i}.png", (i * 30, 0, 0))
    rows = ["file,class"] + [f"{'sub/' if i % 3 == 0 else ''}{i}.png,{'dog' if i % 2 else 'cat'}"
                             for i in range(6)]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    images = load_images(section(root, conditional=True, labels="labels.csv"))
    assert images.classes == ("cat", "dog")
    paths, expected = pixels_by_path(root)
    assert torch.equal(images.pixels, expected)
    assert images.labels.tolist() == [int(p.stem) % 2 for p in paths]
    assert class_names(section(root, conditional=True, labels="labels.csv")) == ("cat", "dog")


def test_stylegan2_ada_dataset_json_with_and_without_names(tmp_path):
    root = tmp_path / "ada"
    for i in range(4):
        write_png(root / "00000" / f"img{i:08d}.png", (i * 50, 0, 0))
    rows = [[f"00000/img{i:08d}.png", i % 2] for i in range(4)]
    (root / "dataset.json").write_text(json.dumps({"labels": rows}))
    images = load_images(section(root, conditional=True, labels="dataset.json"))
    assert images.classes == ("0", "1") and images.labels.tolist() == [0, 1, 0, 1]
    (root / "named.json").write_text(json.dumps({"labels": rows, "class_names": ["odd", "even"]}))
    assert load_images(section(root, conditional=True, labels="named.json")).classes == \
        ("odd", "even")


def test_relabelling_keeps_the_cached_features_of_the_same_images(tmp_path):
    """The features cache keys on the images alone: per-class metrics select cached features
    by the labels at hand, so a relabelled folder (or a conditional run of an unconditional
    one) costs no new reference features."""
    root = labelled_folder(tmp_path / "shapes")
    paths, _ = pixels_by_path(root)
    relative = [p.relative_to(root).as_posix() for p in paths]

    def labelled(assign):
        (root / "labels.csv").write_text("file,class\n" + "".join(
            f"{r},{assign(i)}\n" for i, r in enumerate(relative)))
        return load_images(section(root, conditional=True, labels="labels.csv"))

    first, moved = labelled(lambda i: "a" if i < 6 else "b"), labelled(lambda i: "a" if i < 5 else "b")
    assert first.labels.tolist() != moved.labels.tolist()
    assert first.fingerprint() == moved.fingerprint() == load_images(section(root)).fingerprint()
    first.pixels[0, 0, 0, 0] ^= 1  # but any change of the pixels is another reference
    assert first.fingerprint() != moved.fingerprint()

def test_a_name_wins_over_an_index():
    names = ("3", "7", "9")
    assert resolve_class("7", names) == 1
    assert resolve_class("1", names) == 1  # not a name: an index
    with pytest.raises(GansError, match="known classes: 0=3, 1=7, 2=9"):
        resolve_class("5", names)


# ----------------------------------------------------------------------------- mismatches


def loose_images(root):
    labelled_folder(root)
    write_png(root / "stray.png", (0, 0, 0))


def no_subfolders(root):
    for i in range(3):
        write_png(root / f"{i}.png", (i, 0, 0))


def empty_class(root):
    labelled_folder(root)
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no images here")


def unreadable_class(root):
    labelled_folder(root)
    (root / "broken").mkdir()
    (root / "broken" / "0.png").write_bytes(b"not a png")


def csv_file(text):
    def make(root):
        labelled_folder(root)
        (root / "labels.csv").write_text(text(root))
    return make


def all_rows(root, skip=0):
    rows = [f"{p.relative_to(root).as_posix()},{p.relative_to(root).parts[0]}"
            for p in sorted(root.rglob("*.png"))]
    return "file,class\n" + "\n".join(rows[skip:]) + "\n"


def json_file(content):
    def make(root):
        labelled_folder(root)
        (root / "dataset.json").write_text(content if isinstance(content, str)
                                           else json.dumps(content(root)))
    return make


def index_without_image(root):
    return {"labels": [[p.relative_to(root).as_posix(), 0] for p in sorted(root.rglob("*.png"))],
            "class_names": ["used", "unused"]}


MISMATCHES = [
    (loose_images, {}, ["1 image(s) lie directly in", "stray.png", "data.labels"]),
    (no_subfolders, {}, ["has no subfolders", "data.conditional: false"]),
    (empty_class, {}, ["class 'empty' (subfolder) has no readable image"]),
    (unreadable_class, {}, ["class 'broken' (subfolder) has no readable image",
                            "broken/0.png"]),
    (labelled_folder, {"labels": "labels.csv"}, ["labels.csv not found", "relative to data.root"]),
    (csv_file(lambda root: all_rows(root) + "gone.png,circle\n"), {"labels": "labels.csv"},
     ["names 1 file(s) that are not images", "gone.png"]),
    (csv_file(lambda root: all_rows(root, skip=1)), {"labels": "labels.csv"},
     ["no label for 1 image(s)", "circle/0.png"]),
    (csv_file(lambda root: "name,label\na.png,x\n"), {"labels": "labels.csv"},
     ["columns file and class", "got columns name, label"]),
    (csv_file(lambda root: all_rows(root) + "circle/0.png,square\n"), {"labels": "labels.csv"},
     ["lists 'circle/0.png' twice"]),
    (json_file("{not json"), {"labels": "dataset.json"}, ["is not valid JSON"]),
    (json_file(lambda root: {"labels": None}), {"labels": "dataset.json"},
     ["[path, class index] pairs"]),
    (json_file(index_without_image), {"labels": "dataset.json"},
     ["class 'unused' (in data.labels) has no readable image"]),
    (labelled_folder, {"classes": ["circle", "square"]},
     ["data.classes records 'circle', 'square'", "'stripes'", "start a new run"]),
    (labelled_folder, {"limit": 4}, ["data.limit=4", "'square', 'stripes'"]),
]


@pytest.mark.parametrize("make, keys, words", MISMATCHES,
                         ids=[f"{m.__name__ if hasattr(m, '__name__') else i}-{i}"
                              for i, (m, _, _) in enumerate(MISMATCHES)])
def test_mismatches_are_one_line_errors_with_exit_2(tmp_path, capsys, make, keys, words):
    root = tmp_path / "data"
    root.mkdir()
    make(root)
    raw = tiny_recipe(tmp_path, root)
    raw["data"].update(conditional=True, **keys)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["train", str(recipe), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, (word, err)
    assert not (tmp_path / "runs").exists()  # nothing written before the data is checked


@pytest.mark.parametrize("keys, words", [
    ({"name": "fashion-mnist", "labels": "labels.csv"}, ["data.labels", "only data.name: folder"]),
    ({"classes": ["a", "a"]}, ["data.classes", "distinct class names"]),
    ({"classes": [3, 7]}, ["data.classes", "quoted strings"]),
])
def test_recipe_keys_are_checked(tmp_path, capsys, keys, words):
    raw = tiny_recipe(tmp_path, tmp_path)
    raw["data"].update(keys)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["recipe", str(recipe)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """Three conditional steps on a labelled folder; the folder is then deleted, so that
    everything after training proves it reads the class names from the checkpoint."""
    tmp = tmp_path_factory.mktemp("labelled")
    root = labelled_folder(tmp / "shapes", per_class=6)
    raw = tiny_recipe(tmp, root, steps=3, checkpoint_every=3, sample_every=3)
    raw["data"]["conditional"] = True
    raw["metrics"] = {"fid_every": 0}
    (tmp / "cond.yaml").write_text(yaml.safe_dump(raw))
    assert main(["train", str(tmp / "cond.yaml"), "--out", str(tmp / "runs")]) == 0
    (run_dir,) = (tmp / "runs" / "tiny").iterdir()
    recorded = yaml.safe_load((run_dir / "recipe.yaml").read_text())["data"]["classes"]
    shutil.rmtree(root)
    return run_dir, recorded


def test_conditional_folder_trains_and_records_its_classes(folder_run):
    run_dir, recorded = folder_run
    assert recorded == list(CLASSES)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["class_names"] == list(CLASSES)
    assert ckpt["hyper_parameters"]["recipe"]["data"]["classes"] == list(CLASSES)
    assert ckpt["state_dict"]["discriminator.embed.weight"].shape[0] == len(CLASSES)


def test_sample_by_folder_name_without_the_folder(folder_run, tmp_path, capsys):
    ckpt = folder_run[0] / "checkpoints" / "last.ckpt"
    out = tmp_path / "squares.png"
    assert main(["sample", str(ckpt), "--class", "square", "--num", "2", "--out", str(out)]) == 0
    assert Image.open(out).text["gans:class"] == "square"
    grid = tmp_path / "grid.png"
    assert main(["sample", str(ckpt), "--per-class", "2", "--out", str(grid)]) == 0
    assert Image.open(grid).size == (2 * 18 + 2, 3 * 18 + 2)  # one row per class
    assert Image.open(grid).text["gans:classes"] == "one row per class: " + ", ".join(CLASSES)
    capsys.readouterr()
    assert main(["sample", str(ckpt), "--class", "triangle", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'triangle'" in err and "0=circle, 1=square, 2=stripes" in err


def test_card_api_export_and_explorer_name_the_folder_classes(folder_run, tmp_path, capsys):
    import gans

    run_dir = folder_run[0]
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert gans.load(ckpt).classes == CLASSES
    assert main(["card", str(ckpt)]) == 0
    assert "a class (circle, square, stripes)" in capsys.readouterr().out
    exported = tmp_path / "g.safetensors"
    assert main(["export", str(ckpt), "--out", str(exported)]) == 0
    assert gans.load(exported).classes == CLASSES

    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from gans.serve.app import create_app

    with TestClient(create_app([str(run_dir.parent.parent)])) as client:
        info = client.get("/api/model", params={
            "ckpt": f"runs/tiny/{run_dir.name}/checkpoints/last.ckpt"}).json()
    assert info["classes"] == list(CLASSES)


def test_coverage_on_a_folder_says_what_to_use_instead(folder_run, capsys):
    ckpt = folder_run[0] / "checkpoints" / "last.ckpt"
    assert main(["eval", str(ckpt), "--metrics", "coverage", "--num-fake", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "needs a classifier" in err and "'folder'" in err and "intra_fid" in err


def test_intra_fid_per_folder_class(folder_run, monkeypatch):
    from test_conditional import RandomFeatures  # a fast stand-in for Inception

    from gans.evaluation import evaluate, fid as metrics, inception as inception_module

    run_dir = folder_run[0]
    root = yaml.safe_load((run_dir / "recipe.yaml").read_text())["data"]["root"]
    labelled_folder(Path(root), per_class=6)  # the same images again (the fixture removed them)
    try:
        monkeypatch.setattr(metrics.FeaturesAsInput, "num_features", 16)
        monkeypatch.setattr(evaluate, "resolve_inception_weights",
                            lambda *_: SimpleNamespace(sha256="random-features"))
        monkeypatch.setattr(inception_module, "make_extractor", lambda *_: RandomFeatures())
        options = evaluate.EvalOptions(metrics=("intra_fid",), num_fake=12, batch_size=12,
                                       use_cache=False, device="cpu")
        figure = evaluate.evaluate(run_dir / "checkpoints" / "last.ckpt", options)["intra_fid"]
    finally:
        shutil.rmtree(root)
    assert list(figure["per_class"]) == list(CLASSES)
    assert figure["per_class_images"]["square"] == {"num_real": 6, "num_fake": 4}


def test_resuming_a_labelled_folder_run_goes_on_as_one_run_and_refuses_a_changed_folder(
        tmp_path, capsys):
    """The resumed run reads its classes from the run's recipe (data.classes) and its labels
    from the folder again: the same pairs of image and label in the same order, so stopping and
    resuming ends with the weights of one straight run. A folder that gained a class since
    would give the embedding another row: one line, exit 2, and the run's checkpoint kept."""
    root = labelled_folder(tmp_path / "shapes", per_class=6)
    raw = tiny_recipe(tmp_path, root, steps=5, checkpoint_every=100, sample_every=100)
    raw["data"]["conditional"] = True
    raw["metrics"] = {"fid_every": 0}
    run_dir = assert_resuming_is_one_run(tmp_path, raw, stop_at=2)  # at the end of a pass
    last = run_dir / "checkpoints" / "last.ckpt"

    write_png(root / "triangle" / "0.png", (250, 250, 0))
    before = last.read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--set", "train.steps=7"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "data.classes records 'circle', 'square', 'stripes'" in err and "'triangle'" in err
    assert "restore the data" in err
    assert last.read_bytes() == before
