import math

import pytest
import torch

from gans.objectives import losses
from gans.registry import OBJECTIVES

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def softplus(x):
    return math.log1p(math.exp(x))


def test_non_saturating_by_hand():
    d = losses.non_saturating_d(REAL, FAKE).item()
    expected = (softplus(-2) + softplus(1)) / 2 + (softplus(0.5) + softplus(-3)) / 2
    assert d == pytest.approx(expected)
    assert losses.non_saturating_g(FAKE).item() == pytest.approx(
        (softplus(-0.5) + softplus(3)) / 2)


def test_hinge_by_hand():
    # relu(1 - 2) = 0, relu(1 + 1) = 2 -> 1.0; relu(1 + 0.5) = 1.5, relu(1 - 3) = 0 -> 0.75
    assert losses.hinge_d(REAL, FAKE).item() == pytest.approx(1.75)
    assert losses.critic_g(FAKE).item() == pytest.approx(1.25)


def test_wasserstein_by_hand():
    assert losses.wasserstein_d(REAL, FAKE).item() == pytest.approx(-1.25 - 0.5)


def test_least_squares_by_hand():
    # 0.5 * mean((2-1)^2, (-1-1)^2) = 1.25; 0.5 * mean(0.25, 9) = 2.3125
    assert losses.least_squares_d(REAL, FAKE).item() == pytest.approx(1.25 + 2.3125)
    # 0.5 * mean((0.5-1)^2, (-3-1)^2) = 0.5 * (0.25 + 16) / 2
    assert losses.least_squares_g(FAKE).item() == pytest.approx(4.0625)


def test_registered_objectives_pair_their_losses():
    assert [p.name for p in OBJECTIVES.get("wgan-gp")().phases] == ["Dmain", "Dgp", "Gmain"]
    assert [p.name for p in OBJECTIVES.get("hinge")().phases] == ["Dmain", "Gmain"]
    assert OBJECTIVES.get("non-saturating").g_loss is losses.non_saturating_g
    assert OBJECTIVES.get("least-squares").d_loss is losses.least_squares_d


def test_r1_of_a_linear_discriminator_is_the_squared_weight_norm():
    w = torch.tensor([1.0, 2.0, -2.0, 0.5]).view(1, 4, 1, 1)
    x = torch.randn(5, 4, 1, 1, requires_grad=True)
    logits = (x * w).flatten(1).sum(1)
    assert losses.zero_centred_penalty(x, logits).item() == pytest.approx(1 + 4 + 4 + 0.25)


def test_gradient_penalty_of_a_linear_critic():
    w = torch.full((1, 1, 2, 2), 0.5)  # gradient norm 1 everywhere -> penalty 0

    def critic(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    assert losses.gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    w.mul_(3)  # norm 3 -> (3 - 1)^2 = 4
    assert losses.gradient_penalty(critic, real, fake).item() == pytest.approx(4.0)
