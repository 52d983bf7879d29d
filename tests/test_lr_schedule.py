"""The learning-rate schedule: its shape, its recipe keys, and a resumed run that stays on it."""

import math
from types import SimpleNamespace

import pytest
import torch

from conftest import straight_and_killed_then_resumed, tiny_recipe
from gans.errors import GansError
from gans.recipe import validate
from gans.training.module import lr_scale, run_progress


def schedule(name, decay_start=0.0, final_lr_scale=0.0):
    return SimpleNamespace(schedule=name, decay_start=decay_start, final_lr_scale=final_lr_scale)


@pytest.mark.parametrize("optim, progress, expected", [
    (schedule("constant"), 0.9, 1.0),
    (schedule("linear"), 0.0, 1.0),
    (schedule("linear"), 0.25, 0.75),
    (schedule("linear", final_lr_scale=0.2), 1.0, 0.2),
    (schedule("linear", decay_start=0.5), 0.4, 1.0),   # flat before the decay starts
    (schedule("linear", decay_start=0.5), 0.75, 0.5),  # halfway through the decay
    (schedule("cosine"), 0.5, 0.5),
    (schedule("cosine"), 0.25, (1 + math.cos(math.pi / 4)) / 2),
    (schedule("cosine", decay_start=0.5, final_lr_scale=0.1), 1.0, 0.1),
    (schedule("cosine", final_lr_scale=0.1), 1.5, 0.1),  # extended past its steps: stays low
])
def test_the_scale_follows_the_named_curve(optim, progress, expected):
    assert lr_scale(optim, progress) == pytest.approx(expected)


@pytest.mark.parametrize("key, value, allowed", [
    ("schedule", "exponential", "constant or linear or cosine"),
    ("decay_start", 1.0, "[0, 1)"),
    ("final_lr_scale", -0.5, "[0, 1]"),
])
def test_a_bad_schedule_key_is_one_line_naming_it(key, value, allowed):
    with pytest.raises(GansError) as err:
        validate({"optim": {key: value}})
    message = str(err.value)
    assert "\n" not in message and f"'optim.{key}'" in message and allowed in message


def test_a_killed_run_resumes_on_the_same_learning_rate_curve(tmp_path, image_folder):
    raw = tiny_recipe(tmp_path, image_folder, steps=8, checkpoint_every=4)
    raw["optim"] = {"generator": {"lr": 1e-3}, "schedule": "cosine", "decay_start": 0.25,
                    "final_lr_scale": 0.1}
    straight, _, resumed = straight_and_killed_then_resumed(tmp_path, raw, kill_at=6)

    differ = [k for k, v in straight["state_dict"].items()
              if not torch.equal(v, resumed["state_dict"][k])]
    assert not differ, differ
    # The last batch (7 generator steps done of 8) stepped at the curve's value there.
    last_scale = lr_scale(schedule("cosine", 0.25, 0.1), 7 / 8)
    assert 0.1 < last_scale < 0.2
    for checkpoint in (straight, resumed):
        g_lr, d_lr = (state["param_groups"][0]["lr"] for state in checkpoint["optimizer_states"])
        assert g_lr == pytest.approx(1e-3 * last_scale)
        assert d_lr == pytest.approx(2e-4 * last_scale)


@pytest.mark.parametrize("done, steps, used, limit, expected", [
    (30, 100, None, None, 0.3),  # no time limit: the steps alone
    (30, 100, 10.0, 100.0, 0.3),  # the steps are further along
    (30, 100, 60.0, 100.0, 0.6),  # the clock is further along: it leads
    (5, 10 ** 9, 90.0, 100.0, 0.9),  # a `gans bench` minutes budget: unbounded steps
])
def test_the_run_is_as_far_along_as_its_nearer_limit(done, steps, used, limit, expected):
    assert run_progress(done, steps, used, limit) == pytest.approx(expected)


def test_a_run_that_max_time_stops_ends_its_decay_on_the_clock(tmp_path, image_folder):
    import yaml

    from gans.cli import main

    raw = tiny_recipe(tmp_path, image_folder, steps=1_000_000, checkpoint_every=1_000_000,
                      sample_every=1_000_000, log_every=1_000)
    raw["optim"] = {"generator": {"lr": 1e-3}, "schedule": "linear", "final_lr_scale": 0.1}
    raw["trainer"]["max_time"] = "00:00:00:02"
    recipe = tmp_path / "timed.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["train", str(recipe), "--out", str(tmp_path / "runs")]) == 0
    last = torch.load(tmp_path / "runs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt",
                      weights_only=True)
    assert last["global_step"] < 100_000  # the clock stopped it, far from its steps
    # By the steps alone the rate would still be above 0.99 of the recipe's. On the clock, the
    # last batch started after at least a ninth of the two seconds (its first step takes
    # a fraction of that, even on a loaded machine): below 0.9 of it, and not below 0.1.
    g_lr = last["optimizer_states"][0]["param_groups"][0]["lr"]
    assert 1e-4 <= g_lr < 0.9e-3
