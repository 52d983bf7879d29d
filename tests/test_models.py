import pytest
import torch

from gans.errors import GansError
from gans.models.dcgan import DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize("resolution", [16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("width", [8, 16])
def test_dcgan_shapes_and_range(resolution, channels, width):
    g = DCGANGenerator(latent_dim=12, width=width, channels=channels, resolution=resolution)
    d = DCGANDiscriminator(width=width, channels=channels, resolution=resolution)
    images = g(torch.randn(3, 12))
    assert images.shape == (3, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert d(images).shape == (3,)


@pytest.mark.parametrize("norm, spectral", [("none", True), ("batch", True), ("none", False)])
def test_discriminator_options(norm, spectral):
    d = DCGANDiscriminator(width=8, channels=3, resolution=32, norm=norm, spectral_norm=spectral)
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    assert has_bn == (norm == "batch")
    names = [n for n, _ in d.named_parameters()]
    assert any("parametrizations.weight.original" in n for n in names) == spectral
    assert d(torch.randn(2, 3, 32, 32)).shape == (2,)


def test_spectral_norm_bounds_the_layer():
    d = DCGANDiscriminator(width=8, channels=1, resolution=16, norm="none", spectral_norm=True)
    d.train()
    for _ in range(30):  # power iterations converge during forward passes
        d(torch.randn(2, 1, 16, 16))
    conv = d.net[0]
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2).item()
    assert sigma == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("resolution", [8, 24, 48])
def test_unsupported_resolution_is_a_clear_error(resolution):
    with pytest.raises(GansError, match="power of two"):
        DCGANGenerator(resolution=resolution)
