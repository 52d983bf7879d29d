"""A non-finite loss stops the run at that step (or rolls back), never reaching the weights."""

import pytest
import torch
import yaml

from conftest import tiny_recipe
from gans.cli import main
from gans.objectives.classic import NonSaturating


def poison_discriminator_loss(monkeypatch, at_d_steps):
    """NaN in the discriminator loss at the given D steps (each only once)."""
    original = NonSaturating.d_main
    pending = set(at_d_steps)

    def poisoned(self, ctx):
        terms = original(self, ctx)
        if ctx.module.d_step in pending:
            pending.discard(ctx.module.d_step)
            terms = {name: value * float("nan") for name, value in terms.items()}
        return terms

    monkeypatch.setattr(NonSaturating, "d_main", poisoned)


def write(tmp_path, image_folder, **train):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, image_folder, **train)))
    return path


def test_nan_stops_at_its_step_and_keeps_the_last_good_checkpoint(
        tmp_path, image_folder, monkeypatch, capsys):
    poison_discriminator_loss(monkeypatch, {5})
    path = write(tmp_path, image_folder, steps=8, checkpoint_every=2)
    assert main(["train", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "non-finite discriminator loss at generator step 6" in err
    assert "train.on_nan: rollback" in err
    last = torch.load(tmp_path / "runs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt",
                      weights_only=True)
    assert last["global_step"] == 2 * 4  # the checkpoint of step 4, untouched by the failure
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values()
               if v.is_floating_point())


def test_rollback_reloads_lowers_learning_rates_and_finishes(
        tmp_path, image_folder, monkeypatch, capsys):
    poison_discriminator_loss(monkeypatch, {5, 7})
    path = write(tmp_path, image_folder, steps=8, checkpoint_every=2, on_nan="rollback")
    assert main(["train", str(path), "--out", str(tmp_path / "runs")]) == 0
    err = capsys.readouterr().err
    assert err.count("rolling back") == 2
    run_dir = tmp_path / "runs" / "tiny" / "version_0"
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2 * 8
    recipe = last["hyper_parameters"]["recipe"]
    assert recipe["optim"]["generator"]["lr"] == pytest.approx(2e-4 / 4)
    assert recipe["optim"]["discriminator"]["lr"] == pytest.approx(2e-4 / 4)
    assert [g["lr"] for g in last["optimizer_states"][0]["param_groups"]] == \
        [pytest.approx(2e-4 / 4)]
    assert yaml.safe_load((run_dir / "recipe.yaml").read_text())["optim"]["generator"]["lr"] == \
        pytest.approx(2e-4 / 4)


def test_rollback_gives_up_after_nan_retries(tmp_path, image_folder, monkeypatch, capsys):
    poison_discriminator_loss(monkeypatch, {3, 4, 5, 6, 7})
    path = write(tmp_path, image_folder, steps=8, checkpoint_every=2, on_nan="rollback",
                 nan_retries=1)
    assert main(["train", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("rolling back") == 1
    assert "non-finite" in err.strip().splitlines()[-1]


def test_nan_before_any_checkpoint_stops_even_with_rollback(
        tmp_path, image_folder, monkeypatch, capsys):
    poison_discriminator_loss(monkeypatch, {0})
    path = write(tmp_path, image_folder, steps=4, on_nan="rollback")
    assert main(["train", str(path), "--out", str(tmp_path / "runs")]) == 2
    assert "generator step 1" in capsys.readouterr().err
