"""StyleGAN-lite: a StyleGAN2-style generator and residual discriminator sized for a CPU.

Generator (Karras et al. 2020, "config F" shrunk):
    z -> pixel norm -> mapping MLP -> w, and a tracked average of w (for truncation);
    a learned 4x4 constant -> per resolution two modulated 3x3 convolutions with weight
    demodulation, each followed by per-pixel noise of learned strength -> an RGB output per
    resolution, summed through upsampling skips.
Discriminator: from RGB -> residual blocks halving the size -> minibatch standard deviation
    -> 3x3 convolution and two dense layers -> one logit per image.
Every weight uses the equalized learning rate: stored N(0, 1), scaled by He's constant at run
time, so Adam's step size means the same for every layer.

The generator offers what the training step and `gans sample` may use, for any model that has it:
    mapping(z, truncation_psi) -> w (N, w_dim)      synthesis(ws, noise) with ws (N, num_ws, w_dim)
    num_ws, w_avg                                   forward(z, labels, truncation_psi, noise)
Outputs are roughly in [-1, 1] without a final tanh, as in StyleGAN2; writers clamp.
With `num_classes` > 0 both are class-conditional, as in StyleGAN2-ADA: G embeds the class,
normalises the embedding like z and feeds both to the mapping network; D projects its last
features on a class embedding (Miyato & Koyama 2018).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gans.errors import GansError
from gans.models.dcgan import check_labels
from gans.models.layers import MinibatchStd
from gans.registry import DISCRIMINATORS, GENERATORS

LRELU_GAIN = math.sqrt(2.0)  # keeps activations' variance through leaky ReLU(0.2)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def _log2_resolution(resolution: int, family: str) -> int:
    log2 = math.log2(resolution) if resolution > 0 else 0
    if log2 != int(log2) or not 3 <= log2 <= 8:
        raise GansError(f"{family} needs data.resolution to be a power of two from 8 to 256 "
                        f"(e.g. 32 or 64), got {resolution}")
    return int(log2)


def _widths(channel_base: int, channel_max: int):
    return lambda resolution: max(1, min(channel_base // resolution, channel_max))


def _normalize(x: torch.Tensor) -> torch.Tensor:
    """Pixel norm: each vector scaled to unit mean square."""
    return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------- layers


class EqualLinear(nn.Module):
    """Dense layer with equalized learning rate; `lr_mul` slows it down (the mapping network)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return _lrelu(x) if self.activate else x


class EqualConv2d(nn.Module):
    """Convolution with equalized learning rate; `down` halves the size first (average pool),
    so the convolution runs at the smaller size."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True,
                 activate: bool = True, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.activate, self.down = activate, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = F.avg_pool2d(x, 2)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias,
                     padding=self.weight.size(-1) // 2)
        return _lrelu(x) if self.activate else x


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution: the style scales the weight's input channels; with
    `demodulate`, each output channel's weight is then scaled back to unit norm."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, w_dim: int,
                 demodulate: bool = True, up: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.demodulate, self.up = demodulate, up

    def modulated_weight(self, w: torch.Tensor) -> torch.Tensor:
        """The per-image weight (N, out, in, k, k) that `forward` applies."""
        styles = self.affine(w)
        weight = self.weight[None] * self.weight_gain * styles[:, None, :, None, None]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum((2, 3, 4), keepdim=True) + 1e-8)
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        weight = self.weight * self.weight_gain
        if self.up:
            x = _upsample(x)
        # Scaling the input by the style and the output by the demodulation factor is the same
        # as convolving each image with its own modulated weight, but stays one ordinary
        # convolution for the batch: much faster on a CPU than the grouped form.
        x = F.conv2d(x * styles[:, :, None, None], weight, padding=weight.size(-1) // 2)
        if self.demodulate:
            norms = styles.square() @ weight.square().sum((2, 3)).t()  # (N, out)
            x = x * torch.rsqrt(norms + 1e-8)[:, :, None, None]
        return x


class StyleLayer(nn.Module):
    """Modulated 3x3 convolution, noise of learned strength, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, up: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: bool) -> torch.Tensor:
        x = self.conv(x, w)
        if noise:
            x = x + self.noise_strength * torch.randn(x.size(0), 1, x.size(2), x.size(3),
                                                      device=x.device, dtype=x.dtype)
        return _lrelu(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    def __init__(self, in_channels: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


# ----------------------------------------------------------------------------- generator


@GENERATORS.register("stylegan-lite")
class StyleGANLiteGenerator(nn.Module):
    """`channel_base // resolution` feature maps per resolution, at most `channel_max`.
    `style_mixing`: the share of training images whose later layers take another image's w.
    `w_avg_beta`: decay of the tracked average w that truncation pulls toward."""

    def __init__(self, latent_dim: int = 256, w_dim: int = 256, mapping_layers: int = 2,
                 channel_base: int = 1024, channel_max: int = 128, style_mixing: float = 0.9,
                 w_avg_beta: float = 0.995, channels: int = 1, resolution: int = 32,
                 num_classes: int = 0):
        super().__init__()
        log2 = _log2_resolution(resolution, "stylegan-lite")
        self.num_classes = num_classes
        if not 0.0 <= style_mixing <= 1.0:
            raise GansError(f"model.generator.style_mixing must be in [0, 1], got {style_mixing}")
        if mapping_layers < 1:
            raise GansError(f"model.generator.mapping_layers must be at least 1, "
                            f"got {mapping_layers}")
        width = _widths(channel_base, channel_max)
        self.latent_dim, self.w_dim = latent_dim, w_dim
        self.style_mixing, self.w_avg_beta = style_mixing, w_avg_beta

        if num_classes:
            self.embed = EqualLinear(num_classes, w_dim)  # of the one-hot class
        mapping_in = latent_dim + (w_dim if num_classes else 0)
        self.mapping_net = nn.Sequential(*[
            EqualLinear(mapping_in if i == 0 else w_dim, w_dim, lr_mul=0.01, activate=True)
            for i in range(mapping_layers)])
        self.register_buffer("w_avg", torch.zeros(w_dim))

        self.const = nn.Parameter(torch.randn(width(4), 4, 4))
        self.input_layer = StyleLayer(width(4), width(4), w_dim)
        self.input_rgb = ToRGB(width(4), channels, w_dim)
        self.blocks = nn.ModuleList()
        for res in (2 ** i for i in range(3, log2 + 1)):
            block = nn.Module()
            block.conv0 = StyleLayer(width(res // 2), width(res), w_dim, up=True)
            block.conv1 = StyleLayer(width(res), width(res), w_dim)
            block.to_rgb = ToRGB(width(res), channels, w_dim)
            self.blocks.append(block)
        # One w per convolution and one for the last RGB output; each ToRGB shares the w of
        # the next block's first convolution, as in StyleGAN2.
        self.num_ws = 2 * len(self.blocks) + 2

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        x = _normalize(z)
        if self.num_classes:
            check_labels(self, labels, z.size(0))
            onehot = F.one_hot(labels.long(), self.num_classes).to(z.dtype)
            x = torch.cat([x, _normalize(self.embed(onehot))], dim=1)
        w = self.mapping_net(x)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(0).to(self.w_avg.dtype).lerp(
                    self.w_avg, self.w_avg_beta))  # kept in fp32 under mixed precision
        if truncation_psi != 1.0:
            w = self.w_avg.to(w.dtype).lerp(w, truncation_psi)
        return w

    def synthesis(self, ws: torch.Tensor, noise: bool = True) -> torch.Tensor:
        x = self.const.expand(ws.size(0), -1, -1, -1)
        x = self.input_layer(x, ws[:, 0], noise)
        image = self.input_rgb(x, ws[:, 1])
        for i, block in enumerate(self.blocks):
            x = block.conv0(x, ws[:, 2 * i + 1], noise)
            x = block.conv1(x, ws[:, 2 * i + 2], noise)
            image = _upsample(image) + block.to_rgb(x, ws[:, 2 * i + 3])
        return image

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """One w for every layer: (N, w_dim) -> (N, num_ws, w_dim)."""
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)

    def mix_styles(self, ws: torch.Tensor) -> torch.Tensor:
        """Style mixing regularization: from a random layer on, a share of the images take the
        w of their neighbour in the batch. The neighbour's w costs no second mapping pass, and
        under several processes each rank mixes its own latents."""
        cutoff = torch.randint(1, self.num_ws, (), device=ws.device)
        mixed = torch.rand(ws.size(0), device=ws.device) < self.style_mixing
        layers = torch.arange(self.num_ws, device=ws.device)
        take_other = mixed[:, None] & (layers[None, :] >= cutoff)
        return torch.where(take_other[..., None], ws.roll(1, 0), ws)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                truncation_psi: float = 1.0, noise: bool = True) -> torch.Tensor:
        ws = self.broadcast(self.mapping(z, truncation_psi, labels))
        if self.training and self.style_mixing > 0:
            ws = self.mix_styles(ws)
        return self.synthesis(ws, noise)


# ----------------------------------------------------------------------------- discriminator


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, down=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, activate=False,
                                down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)


@DISCRIMINATORS.register("stylegan-lite")
class StyleGANLiteDiscriminator(nn.Module):
    def __init__(self, channel_base: int = 1024, channel_max: int = 128, mbstd_group: int = 4,
                 channels: int = 1, resolution: int = 32, num_classes: int = 0):
        super().__init__()
        log2 = _log2_resolution(resolution, "stylegan-lite")
        width = _widths(channel_base, channel_max)
        self.num_classes = num_classes
        self.from_rgb = EqualConv2d(channels, width(resolution), 1)
        self.blocks = nn.Sequential(*[ResidualBlock(width(2 ** i), width(2 ** (i - 1)))
                                      for i in range(log2, 2, -1)])
        self.mbstd = MinibatchStd(mbstd_group)
        self.conv = EqualConv2d(width(4) + 1, width(4), 3)
        self.fc = EqualLinear(width(4) * 16, width(4), activate=True)
        self.out = EqualLinear(width(4), 1)
        if num_classes:
            self.embed = EqualLinear(num_classes, width(4))  # of the one-hot class

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.blocks(self.from_rgb(images))
        x = self.conv(self.mbstd(x))
        h = self.fc(x.flatten(1))
        logits = self.out(h).view(images.size(0))
        if not self.num_classes:
            return logits
        check_labels(self, labels, images.size(0))
        onehot = F.one_hot(labels.long(), self.num_classes).to(h.dtype)
        # Scaled as StyleGAN2-ADA scales its projection, so it starts at the size of the logit.
        return logits + (self.embed(onehot) * h).sum(1) / math.sqrt(h.size(1))
