import json

import pytest
import torch
import yaml
from PIL import Image

from gans.cli import main
from gans.sampling.checkpoint import read_exported
from gans.sampling.provenance import read_info
from gans.sampling.checkpoint import load_generator
from gans.sampling.generate import generate
from conftest import random_images
from test_stylegan_lite import stylegan_recipe


@pytest.fixture(scope="module")
def stylegan_run(tmp_path_factory):
    """A 2-step StyleGAN-lite run, with learned noise strengths set so that noise shows."""
    tmp = tmp_path_factory.mktemp("sg")
    root = random_images(tmp / "images", 16)
    raw = stylegan_recipe(tmp, root, steps=2, checkpoint_every=2, sample_every=2)
    path = tmp / "sg.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path), "--out", str(tmp / "runs")]) == 0
    ckpt = tmp / "runs" / "sg" / "version_0" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=False)
    for key in state["state_dict"]:
        if key.endswith("noise_strength"):
            state["state_dict"][key].fill_(0.3)
    torch.save(state, ckpt)
    return ckpt


def both_ways(ckpt, tmp_path, *flags):
    out = tmp_path / "G.safetensors"
    assert main(["export", str(ckpt), "--out", str(out), *flags]) == 0
    return out


def test_dcgan_export_gives_the_same_images(trained_run, tmp_path, capsys):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    exported = both_ways(ckpt, tmp_path)
    _, metadata = read_exported(exported)
    assert metadata["weights"] == "ema" and metadata["gans_version"]
    assert json.loads(metadata["recipe"])["name"] == "tiny"
    a, _, _ = load_generator(ckpt)
    b, recipe, weights = load_generator(exported)
    assert weights == "ema" and recipe.name == "tiny"
    assert torch.equal(generate(a, 8, seed=3), generate(b, 8, seed=3))
    for source, name in ((ckpt, "a.png"), (exported, "b.png")):
        assert main(["sample", str(source), "--num", "8", "--seed", "3", "--out",
                     str(tmp_path / name)]) == 0
    assert Image.open(tmp_path / "a.png").tobytes() == Image.open(tmp_path / "b.png").tobytes()
    # Images from the export name the checkpoint they came from.
    assert read_info(tmp_path / "a.png")["checkpoint_sha256"] == \
        read_info(tmp_path / "b.png")["checkpoint_sha256"] == metadata["checkpoint_sha256"]


def test_no_ema_exports_the_trained_generator(trained_run, tmp_path, capsys):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    exported = both_ways(ckpt, tmp_path, "--no-ema")
    assert read_exported(exported)[1]["weights"] == "raw"
    a, _, _ = load_generator(ckpt, use_ema=False)
    b, _, weights = load_generator(exported, use_ema=False)
    assert weights == "raw" and torch.equal(generate(a, 4, 1), generate(b, 4, 1))
    ema = both_ways(ckpt, tmp_path)
    capsys.readouterr()
    assert main(["sample", str(ema), "--no-ema", "--out", str(tmp_path / "x.png")]) == 2
    assert "--no-ema" in capsys.readouterr().err


def test_stylegan_lite_export_gives_the_same_images(stylegan_run, tmp_path):
    exported = both_ways(stylegan_run, tmp_path)
    a, _, _ = load_generator(stylegan_run)
    b, _, _ = load_generator(exported)
    assert torch.equal(a.w_avg, b.w_avg) and a.w_avg.abs().sum() > 0
    for psi in (None, 0.5):
        first = generate(a, 4, seed=2, truncation=psi)
        assert torch.equal(first, generate(b, 4, seed=2, truncation=psi))
        assert torch.equal(first, generate(a, 4, seed=2, truncation=psi))  # noise is seeded
    for source, name in ((stylegan_run, "a.png"), (exported, "b.png")):
        assert main(["sample", str(source), "--style-mix", "--seeds", "1,2", "--out",
                     str(tmp_path / name)]) == 0
    assert Image.open(tmp_path / "a.png").tobytes() == Image.open(tmp_path / "b.png").tobytes()
    assert read_info(tmp_path / "a.png")["kind"] == "style-mix"


def test_bad_inputs_are_one_line_errors(trained_run, tmp_path, capsys):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "other.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    (tmp_path / "G.safetensors").write_bytes(b"kept")
    cases = [
        (["export", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "G.safetensors")],
         "pass a .ckpt written by gans train"),
        (["export", str(ckpt), "--out", str(tmp_path / "G.pt")], ".safetensors"),
        (["export", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "G.safetensors")],
         "not found"),
        (["sample", str(tmp_path / "other.safetensors"), "--out", str(tmp_path / "s.png")],
         "not a gans generator"),
        (["sample", str(tmp_path / "G.safetensors"), "--out", str(tmp_path / "s.png")],
         "not a readable safetensors file"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err
    assert (tmp_path / "G.safetensors").read_bytes() == b"kept"  # nothing lost
    assert not (tmp_path / "G.pt").exists() and not (tmp_path / "s.png").exists()
