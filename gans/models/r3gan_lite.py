"""R3GAN-lite: the modern baseline of Huang et al. 2024 ("The GAN is dead; long live the GAN!
A Modern GAN Baseline", NeurIPS), config E, shrunk to train on a CPU at 16 to 64 px.

The paper strips StyleGAN2 down to what a well-posed loss (RpGAN + R1 + R2, loss `rpgan`) needs
and rebuilds the networks from modern convnet parts (its section 3, "A roadmap to a new
baseline"):
    G: z (+ class embedding) -> linear -> times a learned 4x4 basis -> per resolution: 1x1
       convolution if the width changes, bilinear upsampling, residual blocks -> 1x1 to pixels.
    D: the mirror: 1x1 from pixels -> per resolution: residual blocks, 2x2 average downsampling,
       1x1 if the width changes -> at 4x4 a depthwise 4x4 convolution and a linear head.
    Residual block: 1x1 expand (x `expansion`), leaky ReLU, grouped 3x3 (`group_width` channels
       per group), leaky ReLU, 1x1 project back, added to the unchanged stream.
No normalization anywhere: R1 and R2 need each image's logit to depend on that image alone,
and the fix-up initialisation keeps the signal in scale instead. The residual stream itself is
never activated, so every block starts as the identity and the network as a shallow linear one.

G's output is linear (no tanh), as in the paper and StyleGAN2: a tanh saturates where pixels
are at -1 or 1 (most of Fashion-MNIST's background), which stalls their gradient. Outputs are
in about [-1, 1] once trained; writers clamp.

With `num_classes` > 0 both are class-conditional, as in the paper's CIFAR-10 model: G
concatenates a class embedding (size `latent_dim`) to z; D is a projection discriminator
(Miyato & Koyama 2018) whose head yields features instead of a logit, and the logit is their
inner product with the class embedding.

Cost (`python -c 'from gans.models.r3gan_lite import compare_with_dcgan as c; c()'`,
torch.utils.flop_counter over one G and one D forward at batch 64): at 32x32 grayscale the
defaults (channels 128, 64, 32, 16 at 4 to 32 px) have 0.35 M parameters against DCGAN width
64's 1.73 M (recipes/quickstart.yaml) and cost 0.78x its FLOPs, about 1.4x its CPU time per
step (grouped convolutions and the extra elementwise passes do less per FLOP on a CPU).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gans.errors import GansError
from gans.models.dcgan import check_labels
from gans.registry import DISCRIMINATORS, GENERATORS

LRELU_GAIN = math.sqrt(2.0)  # He's gain for leaky ReLU(0.2), folded into the initialisation


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise GansError(f"{key} {message}")


def _stages(resolution: int) -> list[int]:
    """The resolutions the networks work at: 4, 8, ..., resolution."""
    log2 = math.log2(resolution) if resolution > 0 else 0
    _check(log2 == int(log2) and 4 <= log2 <= 8, "data.resolution",
           f"must be a power of two from 16 to 256 for r3gan-lite (e.g. 32 or 64), got {resolution}")
    return [2 ** i for i in range(2, int(log2) + 1)]


def _widths(key: str, channel_base: int, channel_max: int, resolution: int):
    _check(channel_max >= 1, f"{key}.channel_max", f"must be at least 1, got {channel_max}")
    _check(channel_base >= resolution, f"{key}.channel_base",
           f"must be at least data.resolution ({resolution}), so every resolution has a "
           f"feature map (width channel_base / resolution), got {channel_base}")
    return lambda res: min(channel_base // res, channel_max)


def _check_block_keys(key: str, blocks_per_stage: int, expansion: int, group_width: int) -> None:
    _check(blocks_per_stage >= 1, f"{key}.blocks_per_stage", f"must be at least 1, got {blocks_per_stage}")
    _check(expansion >= 1, f"{key}.expansion", f"must be at least 1, got {expansion}")
    _check(group_width >= 1, f"{key}.group_width", f"must be at least 1, got {group_width}")


def _msr_init(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """He ("MSR") initialisation with an explicit gain: weights N(0, gain^2 / fan_in)."""
    fan_in = layer.weight[0].numel()
    nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(fan_in))
    return layer


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _downsample(x: torch.Tensor) -> torch.Tensor:
    # What bilinear interpolation by 1/2 computes: the 2x2 average. The paper's [1, 2, 1]
    # filter smooths a little more but costs a depthwise convolution per resampling.
    return F.avg_pool2d(x, 2)


# ----------------------------------------------------------------------------- residual block


class BiasedActivation(nn.Module):
    """The block's only biases sit before its activations, as in the paper's code: the
    convolutions themselves are bias-free."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2)


class ResidualBlock(nn.Module):
    """Section 3.4, "Modernizing: ResNet-ify, inverted bottleneck, grouped convolutions".

    Fix-up initialisation (Zhang et al. 2019), the paper's section 3.3: the branch's last
    layer starts at zero, so the block starts as the identity, and the other two layers' gains
    are scaled by L^(-1/(2m-2)) with L blocks in the network and m = 3 layers per branch, so
    the stream's variance grows by O(1) over the whole network once the last layers move."""

    def __init__(self, channels: int, expansion: int, group_width: int, depth: int, key: str):
        super().__init__()
        expanded = channels * expansion
        groups = max(1, expanded // group_width)
        _check(expanded % groups == 0, f"{key}.group_width",
               f"must split {expanded} expanded channels into equal groups, got {group_width}")
        gain = LRELU_GAIN * depth ** (-1.0 / (2 * 3 - 2))
        self.expand = _msr_init(nn.Conv2d(channels, expanded, 1, bias=False), gain)
        self.act1 = BiasedActivation(expanded)
        self.spatial = _msr_init(nn.Conv2d(expanded, expanded, 3, padding=1, groups=groups,
                                           bias=False), gain)
        self.act2 = BiasedActivation(expanded)
        self.project = nn.Conv2d(expanded, channels, 1, bias=False)
        nn.init.zeros_(self.project.weight)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.act2(self.spatial(self.act1(self.expand(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


def _blocks(channels: int, count: int, expansion: int, group_width: int, depth: int,
            key: str) -> nn.Sequential:
    return nn.Sequential(*[ResidualBlock(channels, expansion, group_width, depth, key)
                           for _ in range(count)])


def _transition(in_channels: int, out_channels: int) -> nn.Module:
    """A width change between stages: a 1x1 convolution at the lower of the two resolutions,
    where it is four times cheaper."""
    if in_channels == out_channels:
        return nn.Identity()
    return _msr_init(nn.Conv2d(in_channels, out_channels, 1, bias=False))


# ----------------------------------------------------------------------------- generator


@GENERATORS.register("r3gan-lite")
class R3GANLiteGenerator(nn.Module):
    """`min(channel_base / resolution, channel_max)` channels per resolution; `blocks_per_stage`
    residual blocks at every resolution from 4x4 up; `expansion` and `group_width` shape each
    block's inverted bottleneck."""

    def __init__(self, latent_dim: int = 64, channel_base: int = 512, channel_max: int = 256,
                 blocks_per_stage: int = 1, expansion: int = 2, group_width: int = 16,
                 channels: int = 1, resolution: int = 32, num_classes: int = 0):
        super().__init__()
        key = "model.generator"
        _check(latent_dim >= 1, f"{key}.latent_dim", f"must be at least 1, got {latent_dim}")
        _check_block_keys(key, blocks_per_stage, expansion, group_width)
        stages = _stages(resolution)
        width = _widths(key, channel_base, channel_max, resolution)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        depth = blocks_per_stage * len(stages)

        # Conditioning (appendix, CIFAR-10): the class embedding joins z. As a dense layer on
        # the one-hot class, N(0, 1/num_classes), as the paper's code initialises it.
        if num_classes:
            self.embed = nn.Embedding(num_classes, latent_dim)
            nn.init.normal_(self.embed.weight, 0.0, 1.0 / math.sqrt(num_classes))
        # Generative basis: a learned 4x4 pattern per channel, scaled per image by a linear
        # function of the latent; it replaces StyleGAN's constant input and mapping network.
        self.basis = nn.Parameter(torch.randn(width(4), 4, 4))
        self.linear = _msr_init(nn.Linear(latent_dim * (2 if num_classes else 1), width(4),
                                          bias=False))
        self.stages = nn.ModuleList()
        for res in stages:
            stage = nn.Module()
            if res > 4:
                stage.transition = _transition(width(res // 2), width(res))
            stage.blocks = _blocks(width(res), blocks_per_stage, expansion, group_width, depth, key)
            self.stages.append(stage)
        self.to_pixels = _msr_init(nn.Conv2d(width(resolution), channels, 1, bias=False))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            check_labels(self, labels, z.size(0))
            z = torch.cat([z, self.embed(labels.long())], dim=1)
        x = self.basis[None] * self.linear(z)[:, :, None, None]
        for i, stage in enumerate(self.stages):
            if i:
                x = _upsample(stage.transition(x))
            x = stage.blocks(x)
        return self.to_pixels(x)


# ----------------------------------------------------------------------------- discriminator


@DISCRIMINATORS.register("r3gan-lite")
class R3GANLiteDiscriminator(nn.Module):
    """The generator's mirror, with the same keys."""

    def __init__(self, channel_base: int = 512, channel_max: int = 256,
                 blocks_per_stage: int = 1, expansion: int = 2, group_width: int = 16,
                 channels: int = 1, resolution: int = 32, num_classes: int = 0):
        super().__init__()
        key = "model.discriminator"
        _check_block_keys(key, blocks_per_stage, expansion, group_width)
        stages = _stages(resolution)[::-1]
        width = _widths(key, channel_base, channel_max, resolution)
        self.num_classes = num_classes
        depth = blocks_per_stage * len(stages)

        self.from_pixels = _msr_init(nn.Conv2d(channels, width(resolution), 1, bias=False))
        self.stages = nn.ModuleList()
        for res in stages:
            stage = nn.Module()
            stage.blocks = _blocks(width(res), blocks_per_stage, expansion, group_width, depth, key)
            if res > 4:
                stage.transition = _transition(width(res), width(res // 2))
            self.stages.append(stage)
        # Discriminative basis: a depthwise 4x4 convolution weighs each channel's positions
        # (no pooling that would lose where a feature is), then a linear head.
        self.basis = _msr_init(nn.Conv2d(width(4), width(4), 4, groups=width(4), bias=False))
        self.head = _msr_init(nn.Linear(width(4), width(4) if num_classes else 1, bias=False))
        if num_classes:
            # Scaled by 1/sqrt(features), as in the paper's code, so the projected logit starts
            # at the size of an unconditional one.
            self.embed = nn.Embedding(num_classes, width(4))
            nn.init.normal_(self.embed.weight, 0.0, 1.0 / math.sqrt(num_classes * width(4)))

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.from_pixels(images)
        for stage in self.stages:
            x = stage.blocks(x)
            if hasattr(stage, "transition"):
                x = stage.transition(_downsample(x))
        h = self.head(self.basis(x).flatten(1))
        if not self.num_classes:
            return h.view(images.size(0))
        check_labels(self, labels, images.size(0))
        return (h * self.embed(labels.long())).sum(1)


# ----------------------------------------------------------------------------- cost


def cost(generator: nn.Module, discriminator: nn.Module, batch: int = 64) -> tuple[int, int]:
    """(parameters, FLOPs) of one generator and one discriminator forward at `batch`."""
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for net in (generator, discriminator) for p in net.parameters())
    z = torch.randn(batch, generator.latent_dim)
    labels = torch.zeros(batch, dtype=torch.long)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        discriminator(generator(z, labels), labels)
    return params, counter.get_total_flops()


def compare_with_dcgan() -> None:
    """Prints the defaults' cost beside DCGAN width 64's (the quickstart and folder recipes)."""
    from gans.models.dcgan import DCGANDiscriminator, DCGANGenerator

    # The defaults at 32x32 (recipes/r3gan-lite/fashion-mnist.yaml), and recipes/r3gan-lite/
    # folder.yaml's widths at 64x64.
    for res, ch, base in ((32, 1, 512), (64, 3, 1536)):
        dc = cost(DCGANGenerator(channels=ch, resolution=res),
                  DCGANDiscriminator(channels=ch, resolution=res))
        r3 = cost(R3GANLiteGenerator(channels=ch, resolution=res, channel_base=base),
                  R3GANLiteDiscriminator(channels=ch, resolution=res, channel_base=base))
        print(f"{res}x{res}x{ch}: dcgan width 64 {dc[0] / 1e6:.2f} M params "
              f"{dc[1] / 1e9:.2f} GFLOPs; r3gan-lite {r3[0] / 1e6:.2f} M params "
              f"{r3[1] / 1e9:.2f} GFLOPs ({r3[1] / dc[1]:.2f}x the FLOPs, "
              f"{r3[0] / dc[0]:.2f}x the parameters) per G+D forward at batch 64")
