"""The progress bar: generator steps, ending where the run will end."""

import re

import pytest
import yaml

from conftest import tiny_recipe
from gans.training.progress import projected_last_step


@pytest.mark.parametrize("steps, step, pace, remaining, expected", [
    (1000, 10, None, None, 1000),  # no pace measured yet, no clock: train.steps
    (1000, 10, 5.0, None, 1000),  # no trainer.max_time
    (1000, 10, 5.0, 1000.0, 1000),  # the steps end first
    (10 ** 9, 100, 5.0, 60.0, 400),  # a time budget: 300 more steps at 5 a second
    (10 ** 9, 100, 5.0, 0.0, 101),  # the clock is out: the step under way is the last
])
def test_the_bar_ends_at_the_nearer_limit(steps, step, pace, remaining, expected):
    assert projected_last_step(steps, step, pace, remaining) == expected


def test_a_time_budget_shows_the_clocks_end_not_the_unbounded_steps(tmp_path, image_folder,
                                                                     capfd):
    from gans.cli import main

    raw = tiny_recipe(tmp_path, image_folder, steps=1_000_000, checkpoint_every=1_000_000,
                      sample_every=1_000_000, log_every=1)
    raw["trainer"]["max_time"] = "00:00:00:02"
    raw["trainer"]["enable_progress_bar"] = True
    recipe = tmp_path / "timed.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["train", str(recipe), "--out", str(tmp_path / "runs")]) == 0
    out = capfd.readouterr().out  # where Lightning's bar writes
    shown = re.findall(r"generator steps:\s+(\d+)%\|[^|]*\| (\d+)/(\d+)", out)
    assert shown, "no progress bar"
    _, step, last = map(int, shown[-1])
    assert last < 1_000_000 and step <= last
    # The clock ran out: the bar is at its end (within a step, on however few steps it made).
    assert last - step <= max(1, last // 10)
