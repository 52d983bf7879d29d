"""End to end through the command line, as a user runs it."""

import logging

import pytest
import torch
import yaml
from PIL import Image

from conftest import tiny_recipe, write_recipe
from gans.cli import main


def test_run_directory_holds_everything(trained_run):
    assert trained_run.name == "version_0"
    resolved = yaml.safe_load((trained_run / "recipe.yaml").read_text())
    assert resolved["train"]["steps"] == 20 and resolved["train"]["ema"] == 0.9
    assert (trained_run / "checkpoints" / "last.ckpt").is_file()
    grids = sorted(p.name for p in (trained_run / "samples").glob("*.png"))
    assert grids == ["step_0000010.png", "step_0000020.png"]
    assert Image.open(trained_run / "samples" / grids[-1]).size[0] > 16
    assert list(trained_run.glob("events.out.tfevents.*"))


def test_event_file_has_losses_samples_and_rates(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained_run))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    for tag in ("loss/generator", "loss/discriminator", "D/real", "D/fake",
                "grad_norm/generator", "grad_norm/discriminator", "lr/generator",
                "images_per_sec", "kimg"):
        assert tag in scalars, tag
    assert "samples" in events.Tags()["images"]
    assert len(events.Scalars("loss/generator")) == 20  # log_every=1 generator step


def test_checkpoint_records_the_generator_step(trained_run):
    ckpt = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 40  # two optimizer steps per generator step
    assert ckpt["hyper_parameters"]["recipe"]["train"]["steps"] == 20


def test_sample_grid_size_and_determinism(trained_run, tmp_path):
    ckpt = str(trained_run / "checkpoints" / "last.ckpt")
    assert main(["sample", ckpt, "--num", "6", "--nrow", "3", "--seed", "5",
                 "--out", str(tmp_path / "a.png")]) == 0
    assert main(["sample", ckpt, "--num", "6", "--nrow", "3", "--seed", "5",
                 "--out", str(tmp_path / "b.png")]) == 0
    assert main(["sample", ckpt, "--num", "6", "--nrow", "3", "--seed", "6",
                 "--out", str(tmp_path / "c.png")]) == 0
    a, b, c = (Image.open(tmp_path / f"{n}.png") for n in "abc")
    assert a.size == (3 * 16 + 4 * 2, 2 * 16 + 3 * 2)  # make_grid pads 2 px
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_sample_single_images_and_no_ema(trained_run, tmp_path):
    ckpt = str(trained_run / "checkpoints" / "last.ckpt")
    assert main(["sample", ckpt, "--num", "5", "--out", str(tmp_path / "single") + "/"]) == 0
    files = sorted((tmp_path / "single").glob("*.png"))
    assert len(files) == 5 and Image.open(files[0]).size == (16, 16)
    assert main(["sample", ckpt, "--num", "5", "--no-ema",
                 "--out", str(tmp_path / "raw") + "/"]) == 0
    raw = sorted((tmp_path / "raw").glob("*.png"))
    assert Image.open(files[0]).tobytes() != Image.open(raw[0]).tobytes()


@pytest.mark.parametrize("args, fragment", [
    (["--num", "0"], "--num must be at least 1"),
    (["--out", "/proc/forbidden/x.png"], "cannot"),
    (["--out", "{tmp}/grid.txt"], "give a .png"),
])
def test_sample_bad_arguments(trained_run, tmp_path, capsys, args, fragment):
    ckpt = str(trained_run / "checkpoints" / "last.ckpt")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "x.png")]
    assert main(["sample", ckpt, *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("content", [b"", b"garbage bytes", None])
def test_sample_refuses_files_that_are_not_gans_checkpoints(tmp_path, capsys, content):
    path = tmp_path / "model.ckpt"
    if content is None:
        torch.save({"state_dict": {}}, path)  # a checkpoint, but not one of ours
    else:
        path.write_bytes(content)
    assert main(["sample", str(path), "--out", str(tmp_path / "x.png")]) == 2
    assert "gans checkpoint" in capsys.readouterr().err


def test_train_with_missing_data_writes_nothing(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: {name: folder, root: %s}\n" % (tmp_path / "nowhere"))
    out = tmp_path / "runs"
    assert main(["train", str(recipe), "--out", str(out)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not out.exists()


def test_train_with_bad_recipe_writes_nothing(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train: {steps: -1}\n")
    out = tmp_path / "runs"
    assert main(["train", str(recipe), "--out", str(out)]) == 2
    assert "train.steps" in capsys.readouterr().err
    assert not out.exists()


def test_train_with_a_batch_the_packing_discriminator_cannot_split_writes_nothing(
        tmp_path, image_folder, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", yaml.safe_dump(tiny_recipe(tmp_path, image_folder)))
    out = tmp_path / "runs"
    assert main(["train", str(recipe), "--out", str(out), "--set", "train.batch_size=7",
                 "--set", "model.discriminator.pack=2"]) == 2
    assert "train.batch_size 7 does not divide into the discriminator's groups of " \
           "model.discriminator.pack 2: make it a multiple of 2" in capsys.readouterr().err
    assert not out.exists()


def test_train_to_an_unwritable_place_fails_first(tmp_path, image_folder, capsys):
    raw = tiny_recipe(tmp_path, image_folder)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main(["train", str(recipe), "--out", str(blocker / "runs")]) == 2
    assert "pass --out with a writable folder" in capsys.readouterr().err


def test_a_full_disk_fails_before_training(tmp_path, image_folder, monkeypatch, capsys):
    import shutil
    from collections import namedtuple

    import yaml

    from conftest import tiny_recipe, write_recipe
    from gans.cli import main

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 9, 10 ** 9, 4096))
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, image_folder)))
    assert main(["train", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "MiB free under" in err and "--out on another disk" in err and len(err.splitlines()) == 1
    assert not list((tmp_path / "runs").rglob("*.ckpt"))


def test_kept_checkpoints_hold_every_interval_and_sample(tmp_path, image_folder, caplog):
    raw = tiny_recipe(tmp_path, image_folder, steps=5, checkpoint_every=2, keep_checkpoints=True)
    recipe = tmp_path / "keep.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    with caplog.at_level(logging.INFO):
        assert main(["train", str(recipe), "--out", str(tmp_path / "runs")]) == 0
    assert "weights_only" not in caplog.text  # no note from Lightning in the progress bar
    # nor Lightning's count of optimizer steps (10) after the recipe's 5 generator steps
    assert "max_steps" not in caplog.text
    checkpoints = tmp_path / "runs" / "tiny" / "version_0" / "checkpoints"
    kept = sorted(p.name for p in checkpoints.glob("step-*.ckpt"))
    assert kept == ["step-0000002.ckpt", "step-0000004.ckpt"]
    saved = [torch.load(checkpoints / name, weights_only=True) for name in kept]
    assert [c["global_step"] for c in saved] == [2 * 2, 2 * 4]  # both networks' optimizer steps
    assert all("optimizer_states" in c for c in saved)  # whole checkpoints, resumable
    out = tmp_path / "grid.png"
    assert main(["sample", str(checkpoints / kept[0]), "--out", str(out)]) == 0
    assert out.is_file()
