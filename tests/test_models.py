import pytest
import torch

from gans.errors import GansError
from gans.models.dcgan import (DCGANDiscriminator, DCGANGenerator, SelfModulatedBatchNorm2d,
                               WholeImageConv)
from gans.models.layers import MinibatchStd


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


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_dcgan_stem_is_the_transposed_convolution_of_the_latent(layout):
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=12, width=8, resolution=32).to(memory_format=layout)
    stem = g.net[0]
    plain = torch.nn.ConvTranspose2d(12, 32, 4, 1, 0, bias=False)
    stem.load_state_dict(plain.state_dict())  # checkpoints of either form load into the other
    z = torch.randn(5, 12, 1, 1)
    ours, theirs = stem(z), plain(z)
    assert ours.shape == theirs.shape == (5, 32, 4, 4)
    torch.testing.assert_close(ours, theirs)
    upstream = torch.randn_like(theirs)
    (ours_grad,) = torch.autograd.grad(ours, stem.weight, upstream)
    (theirs_grad,) = torch.autograd.grad(theirs, plain.weight, upstream)
    torch.testing.assert_close(ours_grad, theirs_grad)
    torch.testing.assert_close(g(z.flatten(1)), g.net[1:](theirs))


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("num_classes", [0, 3])
def test_dcgan_discriminator_head_is_the_whole_image_convolution(layout, num_classes):
    torch.manual_seed(0)
    d = DCGANDiscriminator(width=8, resolution=16, norm="none", mbstd_group=2,
                           num_classes=num_classes).to(memory_format=layout)
    (head,) = [m for m in d.net if isinstance(m, WholeImageConv)]
    plain = torch.nn.Conv2d(head.in_channels, head.out_channels, 4)
    head.load_state_dict(plain.state_dict())  # checkpoints of either form load into the other
    x = torch.randn(6, head.in_channels, 4, 4).contiguous(memory_format=layout)
    ours, theirs = head(x), plain(x)
    assert ours.shape == theirs.shape == (6, head.out_channels, 1, 1)
    torch.testing.assert_close(ours, theirs)
    upstream = torch.randn_like(theirs)
    ours_grads = torch.autograd.grad(ours, (head.weight, head.bias), upstream)
    theirs_grads = torch.autograd.grad(theirs, (plain.weight, plain.bias), upstream)
    for a, b in zip(ours_grads, theirs_grads):
        torch.testing.assert_close(a, b)
    with pytest.raises(GansError, match=r"wants \(4, 4\) inputs"):
        head(torch.randn(2, head.in_channels, 8, 8))


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


def test_generator_without_batchnorm_trains_each_layer_with_a_bias():
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=12, width=8, resolution=32, norm="none")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())
    hidden = [m for m in g.net[1:] if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(hidden) == 3 and all(m.bias is not None for m in hidden)
    # Without batch statistics an image depends on its own latent only.
    z = torch.randn(4, 12)
    torch.testing.assert_close(g(z)[:1], g(z[:1]))
    with_bn = DCGANGenerator(latent_dim=12, width=8, resolution=32)
    assert not torch.allclose(with_bn(z)[:1], with_bn(z[:1]))


def test_self_modulated_generator_starts_as_batchnorm_and_learns_scales_from_z():
    torch.manual_seed(0)
    modulated = DCGANGenerator(latent_dim=12, width=8, resolution=32, norm="self-modulated")
    plain = DCGANGenerator(latent_dim=12, width=8, resolution=32)
    convs = [m for m in modulated.net if isinstance(m, torch.nn.ConvTranspose2d)]
    for target, source in zip([m for m in plain.net if isinstance(m, torch.nn.ConvTranspose2d)],
                              convs):
        target.load_state_dict(source.state_dict())
    for bn in (m for m in plain.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        torch.nn.init.ones_(bn.weight)
        torch.nn.init.zeros_(bn.bias)
    z = torch.randn(4, 12)
    torch.testing.assert_close(modulated(z), plain(z))  # zero-initialised modulation

    modulated(z).square().sum().backward()
    outputs = [m.mlp[-1] for m in modulated.modules() if isinstance(m, SelfModulatedBatchNorm2d)]
    assert len(outputs) == 3 and all(o.weight.grad.abs().sum() > 0 for o in outputs)
    with torch.no_grad():
        for o in outputs:
            o.weight.normal_()
    # With a trained modulation each layer's scale and shift depend on z.
    twisted = modulated(z)
    assert not torch.allclose(twisted, plain(z), atol=1e-3)


def test_conditional_self_modulated_generator_reads_the_class_through_its_modulation():
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=12, width=8, resolution=32, norm="self-modulated",
                       num_classes=3)
    z = torch.randn(1, 12).repeat(3, 1)
    classes = torch.arange(3)
    start = g(z, classes)
    # Zero-initialised modulation: at the start the class changes nothing.
    torch.testing.assert_close(start[1:], start[:1].expand(2, -1, -1, -1))

    g(z, classes).square().sum().backward()
    outputs = [m.mlp[-1] for m in g.modules() if isinstance(m, SelfModulatedBatchNorm2d)]
    assert all(o.weight.grad[:, 12:].abs().sum() > 0 for o in outputs)  # the class's half
    with torch.no_grad():
        for o in outputs:
            o.weight.normal_()
    g.eval()  # per-image statistics aside: one z, three classes, three different images
    images = g(z, classes)
    assert not torch.allclose(images[0], images[1], atol=1e-3)
    assert not torch.allclose(images[1], images[2], atol=1e-3)
    with pytest.raises(GansError, match="pass labels"):
        g(z)


@pytest.mark.parametrize("norm", ["batch", "self-modulated", "none"])
def test_full_resolution_stage_makes_the_image_with_a_3x3_convolution(norm):
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=12, width=8, resolution=32, norm=norm, full_res_width=4)
    last_transposed = [m for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)][-1]
    to_image = g.net[-2]
    assert (last_transposed.in_channels, last_transposed.out_channels) == (8, 4)
    assert isinstance(to_image, torch.nn.Conv2d) and to_image.kernel_size == (3, 3)
    assert (to_image.in_channels, to_image.out_channels) == (4, 1)
    # The paper's generator plus the stage: 8->4 transposed (4x4), its normalisation and the
    # 4->1 3x3 convolution, in place of the paper's 8->1 transposed layer.
    paper = DCGANGenerator(latent_dim=12, width=8, resolution=32, norm=norm)
    norm_params = {"batch": 2 * 4, "none": 0,
                   "self-modulated": 12 * 32 + 32 + 32 * 8 + 8}[norm]
    added = 8 * 4 * 16 + (4 if norm == "none" else 0) + norm_params + 4 * 9 + 1
    removed = 8 * 1 * 16 + 1
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(g) == count(paper) + added - removed
    images = g(torch.randn(3, 12))
    assert images.shape == (3, 1, 32, 32) and images.abs().max() <= 1
    images.square().sum().backward()
    assert last_transposed.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"norm": "layer"}, "norm must be one of batch, self-modulated, none"),
    ({"norm": "none", "num_classes": 3}, "no way to read the class"),
    ({"full_res_width": -1}, "full_res_width must be 0"),
    ({"full_res_width": 1.5}, "full_res_width must be 0"),
])
def test_generator_norm_errors_name_the_key(kwargs, message):
    with pytest.raises(GansError, match=message):
        DCGANGenerator(**kwargs)


@pytest.mark.parametrize("resolution", [8, 24, 48])
def test_unsupported_resolution_is_a_clear_error(resolution):
    with pytest.raises(GansError, match="power of two"):
        DCGANGenerator(resolution=resolution)


def test_minibatch_std_handles_batches_not_divisible_by_the_group():
    layer = MinibatchStd(4)
    for n in (1, 3, 5, 8):
        out = layer(torch.randn(n, 2, 4, 4))
        assert out.shape == (n, 3, 4, 4)
        assert torch.isfinite(out).all()


def test_dcgan_minibatch_std_couples_the_logits_of_a_group_only():
    torch.manual_seed(0)
    d = DCGANDiscriminator(width=8, channels=1, resolution=16, norm="none", mbstd_group=2)
    images = torch.randn(4, 1, 16, 16)
    changed = images.clone()
    changed[2] = torch.randn(1, 16, 16)
    before, after = d(images), d(changed)
    # Groups take every (n / group)-th image: with 4 images in groups of 2, {0, 2} and {1, 3}.
    assert not torch.isclose(before[0], after[0])
    assert torch.equal(before[[1, 3]], after[[1, 3]])
    plain = DCGANDiscriminator(width=8, channels=1, resolution=16, norm="none")
    assert d.net[-1].in_channels == plain.net[-1].in_channels + 1


def test_dcgan_minibatch_std_group_must_not_be_negative():
    with pytest.raises(GansError, match="mbstd_group must be 0"):
        DCGANDiscriminator(mbstd_group=-1)


@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_dcgan_discriminator_with_3x3_kernels_scores_each_image(resolution):
    d = DCGANDiscriminator(width=8, channels=3, resolution=resolution, norm="none", kernel=3)
    assert d(torch.randn(2, 3, resolution, resolution)).shape == (2,)
    strided = [m for m in d.net if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == {16: 2, 32: 3, 64: 4}[resolution]
    assert all(m.kernel_size == (3, 3) for m in strided)
    # The 4x4 head over the last 4x4 map stays: only the strided layers change.
    assert d.net[-1].kernel_size == (4, 4)


def test_dcgan_discriminator_kernel_must_be_3_or_4():
    with pytest.raises(GansError, match="kernel must be 3 or 4"):
        DCGANDiscriminator(kernel=5)


def test_dcgan_packing_discriminator_scores_consecutive_images_together():
    torch.manual_seed(0)
    d = DCGANDiscriminator(width=8, channels=3, resolution=16, norm="none", mbstd_group=2,
                           pack=2)
    assert d.net[0].in_channels == 6  # two RGB images stacked on the channel axis
    images = torch.randn(6, 3, 16, 16)
    logits = d(images)
    assert logits.shape == (3,)
    stacked = torch.cat([images[0::2], images[1::2]], dim=1)  # pairs (0, 1), (2, 3), (4, 5)
    torch.testing.assert_close(logits, d.net(stacked).view(3))
    changed = images.clone()
    changed[3] = torch.randn(3, 16, 16)
    after = d(changed)
    # Image 3 is in the second pack, whose minibatch-std group {1} holds no other pack.
    assert not torch.isclose(logits[1], after[1])
    assert torch.equal(logits[[0, 2]], after[[0, 2]])


@pytest.mark.parametrize("pack", [0, -2, 1.5, True, "2"])
def test_dcgan_pack_must_be_a_positive_count(pack):
    with pytest.raises(GansError, match="pack must be 1"):
        DCGANDiscriminator(pack=pack)


def test_dcgan_pack_refuses_what_it_cannot_score():
    with pytest.raises(GansError, match="use pack 1 with data.conditional"):
        DCGANDiscriminator(pack=2, num_classes=10)
    d = DCGANDiscriminator(width=8, resolution=16, norm="none", pack=3)
    with pytest.raises(GansError, match="a batch of 4 does not divide: make "
                                         "train.batch_size a multiple of 3"):
        d(torch.randn(4, 1, 16, 16))
