import pytest
import torch

from gans.objectives.augment import Augment
from gans.registry import AUGMENTATIONS
from gans.errors import GansError

POLICY = ["color", "translation", "cutout"]


def images(n=8, channels=3):
    return torch.rand(n, channels, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("adaptive", [False, True])
def test_identity_at_p_zero(adaptive):
    augment = Augment(POLICY, p=0.0, target=0.6 if adaptive else None)
    x = images()
    assert torch.equal(augment(x), x)


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_each_transform_changes_images_and_is_differentiable(name):
    torch.manual_seed(0)
    x = images().requires_grad_(True)
    y = AUGMENTATIONS.get(name)(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    (grad,) = torch.autograd.grad((y * torch.randn_like(y)).sum(), x)
    assert grad.abs().sum() > 0


def test_translation_shifts_by_whole_pixels():
    torch.manual_seed(1)
    x = images(4, 1)
    y = AUGMENTATIONS.get("translation")(x)
    for a, b in zip(x[:, 0], y[:, 0]):  # each output is the input moved, zeros let in
        found = any(torch.equal(b[max(dy, 0):16 + min(dy, 0), max(dx, 0):16 + min(dx, 0)],
                                a[max(-dy, 0):16 + min(-dy, 0), max(-dx, 0):16 + min(-dx, 0)])
                    for dy in range(-2, 3) for dx in range(-2, 3))
        assert found


def test_p_one_augments_every_image_and_grads_flow_through_the_module():
    torch.manual_seed(0)
    x = images().requires_grad_(True)
    y = Augment(POLICY, p=1.0)(x)
    assert all(not torch.allclose(a, b) for a, b in zip(x, y))
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_ada_moves_p_toward_the_target_on_a_toy_discriminator():
    def run(real_logit_sign: float, start: float) -> float:
        augment = Augment(POLICY, p=start, target=0.6, interval=1, speed_kimg=0.1)
        for _ in range(5):
            logits = torch.full((16,), real_logit_sign)  # a toy D: equally sure of every real
            augment.accumulate(logits)
            augment.adjust(augment.signs.clone(), augment.seen.clone())
        return augment.p.item()

    assert run(+1.0, 0.2) > 0.2  # overconfident on reals (r_t = 1 > 0.6): more augmentation
    assert run(-1.0, 0.5) < 0.5  # unsure (r_t = -1 < 0.6): less
    assert run(-1.0, 0.0) == 0.0  # never below 0
    assert run(+1.0, 0.99) == 1.0  # never above 1


def test_state_is_in_the_state_dict():
    augment = Augment(POLICY, p=0.3, target=0.6)
    state = augment.state_dict()
    assert state["p"].item() == pytest.approx(0.3)
    assert set(state) == {"p", "signs", "seen", "rt"}


def test_unknown_transform_is_a_clear_error():
    with pytest.raises(GansError, match="unknown augmentation 'flip'; known: color, cutout, translation"):
        Augment(["flip"])
