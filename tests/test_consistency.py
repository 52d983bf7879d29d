"""Balanced consistency regularization (objective `rpgan-bcr`): the term is the squared change of
D's logit under a small shift, on reals and on fakes, lazily weighted; it trains in a recipe."""

from types import SimpleNamespace

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import tiny_recipe, train_recipe
from gans.errors import GansError
from gans.objectives.augment import translation
from gans.objectives.base import StepContext
from gans.recipe import validate
from gans.registry import OBJECTIVES


class PositionWeighted(torch.nn.Module):
    """D(x) = sum(w * x) with a different weight at every pixel: a shift changes the logit."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.arange(16.0).view(1, 1, 4, 4))

    def forward(self, x, labels=None):
        return (self.w * x).flatten(1).sum(1)


class PixelSum(torch.nn.Module):
    """D(x) = sum(x): blind to where the ink is, so a shift that keeps it in view changes nothing."""

    def forward(self, x, labels=None):
        return x.flatten(1).sum(1)


def context(discriminator, real, fake):
    module = SimpleNamespace(generator=None, discriminator=discriminator, augment=lambda x: x)
    return StepContext(module, real, None, None, None, fake)


def test_the_phases_run_bcr_in_the_discriminator_update_every_kth_step():
    objective = OBJECTIVES.get("rpgan-bcr")(gamma=0.1, reg_every=4, cr_every=2)
    assert [(p.name, p.network, p.every) for p in objective.phases] == [
        ("Dmain", "discriminator", 1), ("Dcr", "discriminator", 2),
        ("Dreg", "discriminator", 4), ("Gmain", "generator", 1)]
    assert "Dcr" not in [p.name for p in OBJECTIVES.get("rpgan-bcr")(cr_weight=0).phases]


def test_bcr_is_the_squared_change_of_the_logit_under_a_shift_on_reals_and_fakes():
    generator = torch.Generator().manual_seed(1)
    real = torch.rand(5, 1, 4, 4, generator=generator)
    fake = torch.rand(5, 1, 4, 4, generator=generator) - 0.5
    weight, every, shift = 2.0, 3, 0.25
    objective = OBJECTIVES.get("rpgan-bcr")(gamma=0.0, cr_weight=weight, cr_every=every,
                                            cr_shift=shift)
    d = PositionWeighted()
    torch.manual_seed(0)
    terms = objective.d_consistency(context(d, real, fake))

    torch.manual_seed(0)  # the same shifts, drawn in the same order: reals first
    moved_real, moved_fake = translation(real, shift), translation(fake, shift)
    assert not torch.equal(moved_real, real) and not torch.equal(moved_fake, fake)
    with torch.no_grad():
        by_hand = {"cr_real": (d(moved_real) - d(real)).square().mean(),
                   "cr_fake": (d(moved_fake) - d(fake)).square().mean()}
    for name in ("cr_real", "cr_fake"):
        assert by_hand[name] > 0
        assert terms[name].item() == pytest.approx(weight * every * by_hand[name].item())
    # It trains D: the term's gradient reaches D's weights.
    (terms["cr_real"] + terms["cr_fake"]).backward()
    assert d.w.grad is not None and d.w.grad.abs().sum() > 0


def test_a_discriminator_blind_to_placement_pays_no_bcr():
    ink = torch.zeros(4, 1, 8, 8)
    ink[:, :, 3:5, 3:5] = torch.rand(4, 1, 2, 2) + 0.1  # the shift (1 px at most) keeps it inside
    objective = OBJECTIVES.get("rpgan-bcr")(gamma=0.0, cr_shift=0.125)
    terms = objective.d_consistency(context(PixelSum(), ink, ink.flip(0)))
    assert terms["cr_real"].item() == pytest.approx(0.0, abs=1e-10)
    assert terms["cr_fake"].item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("loss, fragment", [
    ({"cr_weight": -1}, "key 'loss.cr_weight' must not be negative"),
    ({"cr_every": 0}, "key 'loss.cr_every' must be at least 1"),
    ({"cr_shift": 0.5}, "key 'loss.cr_shift' must be a fraction of the image size in"),
])
def test_bad_bcr_keys_are_one_line_errors(loss, fragment):
    with pytest.raises(GansError, match=fragment.replace("(", r"\(")):
        validate({"loss": {"name": "rpgan-bcr", **loss}, "data": {"resolution": 16}})


def test_rpgan_bcr_trains_and_logs_its_terms(tmp_path, image_folder):
    raw = tiny_recipe(tmp_path, image_folder, steps=3, log_every=1)
    raw["model"]["discriminator"]["norm"] = "none"
    raw["loss"] = {"name": "rpgan-bcr", "gamma": 1.0, "cr_weight": 10.0}
    run_dir = train_recipe(raw, tmp_path, tmp_path / "runs")
    events = EventAccumulator(str(run_dir)).Reload()
    for tag in ("loss/cr_real", "loss/cr_fake", "loss/r1", "loss/d_adversarial"):
        values = [e.value for e in events.Scalars(tag)]
        assert len(values) == 3 and all(v == v and v >= 0 for v in values), tag
