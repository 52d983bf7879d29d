"""`gans eval` end to end, and our FID against torch-fidelity's own on the same folders."""

import json

import pytest
import torch
from PIL import Image

from gans.cli import main
from gans.data import load_images
from gans.evaluation.inception import make_extractor, resolve_inception_weights
from gans.evaluation.fid import extract_features, feature_fid
from gans.recipe import DataSection


def write_folder(folder, n, seed, noise=0.0):
    """Smooth random colour fields (like generator output), optionally with pixel noise."""
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    images = torch.nn.functional.interpolate(low, size=32, mode="bilinear")
    images = (images + noise * torch.randn(images.shape, generator=g)).clamp(0, 1)
    for i, image in enumerate((images * 255).round().to(torch.uint8)):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:04d}.png")


def test_fid_equals_torch_fidelity_on_the_same_folders(tmp_path):
    import torch_fidelity

    a, b = tmp_path / "a", tmp_path / "b"
    write_folder(a, 200, seed=0)
    write_folder(b, 200, seed=1, noise=0.1)
    weights = resolve_inception_weights()
    extractor = make_extractor(weights)
    fid = feature_fid()
    for folder, real in ((a, True), (b, False)):
        pixels = load_images(DataSection(name="folder", root=str(folder), resolution=32,
                                         channels=3)).pixels
        fid.update(extract_features(extractor, pixels, batch_size=50), real=real)
    ours = fid.compute().item()
    theirs = torch_fidelity.calculate_metrics(
        input1=str(a), input2=str(b), fid=True, cuda=False, batch_size=50, cache=False,
        verbose=False, feature_extractor_weights_path=str(weights.path),
    )["frechet_inception_distance"]
    assert ours > 1.0  # the two sets differ: the comparison is not between two zeros
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_eval_prints_figures_with_protocol_and_writes_json(trained_run, tmp_path, capsys):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    out = tmp_path / "eval" / "figures.json"
    assert main(["eval", str(ckpt), "--metrics", "fid,kid,pr,dc", "--num-fake", "24",
                 "--num-real", "24", "--batch-size", "12", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("fid", "kid", "precision", "recall", "density", "coverage", "protocol:"):
        assert name in printed
    figures = json.loads(out.read_text())
    assert set(figures) == {"fid", "kid", "precision", "recall", "density", "coverage"}
    for figure in figures.values():
        assert figure["extractor"] == "inception-v3-tf-2015-12-05"
        assert len(figure["weights_sha256"]) == 64
        assert (figure["num_fake"], figure["num_real"]) == (24, 24)
        assert figure["reference"]["resolution"] == 16 and figure["reference"]["split"] == "train"
        assert "299" in figure["resize"]
    assert figures["fid"]["value"] > 0 and 0 <= figures["precision"]["value"] <= 1


def test_eval_is_deterministic_and_reads_the_cache(trained_run, tmp_path, capsys, monkeypatch):
    from gans.evaluation import evaluate, inception as inception_module

    shown = []  # images per Inception call
    make = inception_module.make_extractor

    def counted(*args, **kwargs):
        extractor = make(*args, **kwargs)
        extractor.register_forward_hook(lambda module, inputs, output: shown.append(
            len(inputs[0])))
        return extractor

    monkeypatch.setattr(inception_module, "make_extractor", counted)
    ckpt = str(trained_run / "checkpoints" / "last.ckpt")
    args = ["eval", ckpt, "--metrics", "fid", "--num-fake", "16", "--num-real", "17"]
    # --no-cache computes the real features (and stores them) whatever an earlier run left.
    assert main(args + ["--json", str(tmp_path / "1.json"), "--no-cache"]) == 0
    assert sum(shown) == 16 + 17
    shown.clear()
    assert main(args + ["--json", str(tmp_path / "2.json")]) == 0
    assert sum(shown) == 16  # the generated images only: the real features came from the cache
    first, second = (json.loads((tmp_path / f"{i}.json").read_text())["fid"]["value"]
                     for i in (1, 2))
    assert first == pytest.approx(second, rel=1e-6)


def test_eval_against_a_folder_reference(trained_run, tmp_path, capsys):
    ref = tmp_path / "ref"
    write_folder(ref, 20, seed=3)
    assert main(["eval", str(trained_run / "checkpoints" / "last.ckpt"), "--metrics", "fid",
                 "--num-fake", "10", "--reference", str(ref), "--json",
                 str(tmp_path / "f.json")]) == 0
    figure = json.loads((tmp_path / "f.json").read_text())["fid"]
    assert figure["reference"]["split"] == "folder" and figure["num_real"] == 20


@pytest.mark.parametrize("args, fragment", [
    (["--num-fake", "1"], "--num-fake must be at least 2"),
    (["--metrics", "fid,bogus"], "unknown metric 'bogus'; choose from fid,kid,pr,dc,coverage"),
    (["--metrics", "coverage"], "needs a classifier for the dataset"),
    (["--reference", "/nowhere"], "--reference /nowhere: not train, test or a folder"),
    (["--json", "/proc/nope/x.json"], "cannot write to /proc/nope"),
])
def test_eval_bad_arguments(trained_run, capsys, args, fragment):
    code = main(["eval", str(trained_run / "checkpoints" / "last.ckpt"), *args])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_eval_without_reachable_data_asks_for_a_reference(trained_run, tmp_path, capsys):
    """A checkpoint whose training folder is gone cannot be compared without --reference."""

    ckpt = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt["hyper_parameters"]["recipe"]["data"]["root"] = str(tmp_path / "moved-away")
    moved = tmp_path / "moved.ckpt"
    torch.save(ckpt, moved)
    assert main(["eval", str(moved), "--metrics", "fid", "--num-fake", "4"]) == 2
    assert "pass --reference DIR" in capsys.readouterr().err


def test_eval_class_coverage_on_a_fashion_mnist_checkpoint(tmp_path, capsys):
    import yaml

    recipe = tmp_path / "fm.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"generator": {"name": "dcgan", "latent_dim": 8, "width": 8},
                  "discriminator": {"name": "dcgan", "width": 8}},
        "data": {"name": "fashion-mnist", "resolution": 16, "limit": 64},
        "train": {"steps": 2, "batch_size": 32, "sample_every": 2},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False}}))
    assert main(["train", str(recipe), "--out", str(tmp_path / "runs")]) == 0
    ckpt = tmp_path / "runs" / "fm" / "version_0" / "checkpoints" / "last.ckpt"
    out = tmp_path / "coverage.json"
    assert main(["eval", str(ckpt), "--metrics", "coverage", "--num-fake", "40",
                 "--json", str(out)]) == 0
    assert "class_coverage" in capsys.readouterr().out
    figure = json.loads(out.read_text())["class_coverage"]
    assert figure["num_classes"] == 10 and figure["num_real"] == 10000
    assert figure["reference"]["split"] == "test"
    assert sum(figure["generated_share"].values()) == pytest.approx(1.0)
    assert 1 <= figure["value"] == figure["classes_covered"] <= 10
    assert figure["kl_real_generated"] >= 0 and len(figure["weights_sha256"]) == 64


def test_every_metric_has_a_row_in_docs_metrics():
    from conftest import REPO
    from gans.evaluation.evaluate import METRICS

    rows = [line for line in (REPO / "docs" / "metrics.md").read_text().splitlines()
            if line.startswith("| `")]
    assert [m for m in METRICS if not any(row.startswith(f"| `{m}` |") for row in rows)] == []
