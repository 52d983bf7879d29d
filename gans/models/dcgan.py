"""DCGAN (Radford et al. 2016) for square images of 32 or 64 px (any power of two from 16 up).

Generator: z -> 4x4 -> transposed convolutions doubling the size -> tanh image in [-1, 1].
Discriminator: the mirror, strided convolutions down to 4x4 -> one logit per image.
With `num_classes` > 0 both are class-conditional: G through conditional BatchNorm (a scale and
shift per class, de Vries et al. 2017), D through a projection (Miyato & Koyama 2018).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from gans.errors import GansError
from gans.models.layers import MinibatchStd
from gans.registry import DISCRIMINATORS, GENERATORS


def _num_doublings(resolution: int) -> int:
    steps = math.log2(resolution) - 2 if resolution > 0 else -1
    if steps < 2 or steps != int(steps):
        raise GansError(f"DCGAN needs data.resolution to be a power of two >= 16 (e.g. 32 or 64), "
                        f"got {resolution}")
    return int(steps)


def _init_weights(module: nn.Module) -> None:
    # The DCGAN paper's initialisation: N(0, 0.02) for convolutions, N(1, 0.02) for BN scales.
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def check_labels(network: nn.Module, labels: torch.Tensor | None, batch: int) -> None:
    """A conditional network needs one class index per image; an unconditional one ignores
    labels, so that callers can pass them to any model."""
    if network.num_classes and labels is None:
        raise GansError(f"{type(network).__name__} is class-conditional ({network.num_classes} "
                        "classes): pass labels, one class index per image")
    if network.num_classes and labels.shape != (batch,):
        raise GansError(f"{type(network).__name__} wants labels of shape ({batch},), one class "
                        f"index per image, got {tuple(labels.shape)}")


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are looked up per class; they start at 1 and 0, so the
    layer starts as plain BatchNorm for every class."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * self.gamma(labels)[:, :, None, None] + \
            self.beta(labels)[:, :, None, None]


class SelfModulatedBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are functions of the image's latent (self-modulation,
    Chen et al. 2019): a small MLP per layer, its output layer zero-initialised, so the layer
    starts as plain BatchNorm. A class-conditional generator feeds it z beside its class's
    embedding, as BigGAN's conditional BatchNorm reads both."""

    def __init__(self, channels: int, latent_dim: int, hidden: int = 32):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.mlp = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(True),
                                 nn.Linear(hidden, 2 * channels))

    def reset_output(self) -> None:
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        scale, shift = self.mlp(z).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return torch.addcmul(shift, self.bn(x), scale + 1)


class LatentProjection(nn.ConvTranspose2d):
    """DCGAN's first layer, a 4x4 transposed convolution of the 1x1 latent, computed as the
    matrix product it is: torch's transposed-convolution path took 2.75x the product's time on
    a 2-core AVX2 CPU (docs/performance.md, benchmarks/whole_image_layers.py). The weight keeps
    the transposed convolution's name and shape, so checkpoints load either way."""

    def __init__(self, latent_dim: int, channels: int):
        super().__init__(latent_dim, channels, 4, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, w = x.flatten(1), self.weight  # w: (latent, channels, 4, 4)
        if w.is_contiguous(memory_format=torch.channels_last):
            # (latent, 4, 4, channels) is then a view, and so is the NHWC output the next
            # layers, also in channels_last, read without a copy.
            out = torch.mm(z, w.permute(0, 2, 3, 1).reshape(w.size(0), -1))
            return out.view(z.size(0), 4, 4, w.size(1)).permute(0, 3, 1, 2)
        return torch.mm(z, w.reshape(w.size(0), -1)).view(z.size(0), w.size(1), 4, 4)


class WholeImageConv(nn.Conv2d):
    """The discriminator's last layer, a convolution whose kernel covers its whole 4x4 input,
    computed as the linear layer it is (3x faster in the class-conditional discriminator,
    where it yields 256 features), as `LatentProjection` does for the generator's first layer;
    the weight keeps the convolution's name and shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2:] != self.weight.shape[2:]:
            raise GansError(f"{type(self).__name__} wants {tuple(self.weight.shape[2:])} "
                            f"inputs, got {tuple(x.shape[2:])}")
        out = F.linear(x.flatten(1), self.weight.flatten(1), self.bias)
        return out.view(x.size(0), -1, 1, 1)


GENERATOR_NORMS = ("batch", "self-modulated", "none")


@GENERATORS.register("dcgan")
class DCGANGenerator(nn.Module):
    """`norm`: batch (the paper: BatchNorm after every transposed convolution but the last),
    self-modulated (BatchNorm whose scale and shift are computed from z), or none (each layer
    gets a bias instead). Without BatchNorm the quickstart's generator (as of 2026-12-01) read
    37.8 against 31.7 on the 2k check after the same 2,000 steps (docs/performance.md, "A CPU
    without AVX-512"); self-modulated, the full recipe's read 18.33 against 19.92 after 6,000
    (docs/models.md). `full_res_width` > 0 adds a stage of that many channels at the full
    resolution before a 3x3 convolution makes the image; 0 keeps the paper's last layer."""

    def __init__(self, latent_dim: int = 100, width: int = 64, channels: int = 1,
                 resolution: int = 32, num_classes: int = 0, norm: str = "batch",
                 full_res_width: int = 0):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        if isinstance(full_res_width, bool) or not isinstance(full_res_width, int) \
                or full_res_width < 0:
            raise GansError("model.generator.full_res_width must be 0 (the last transposed "
                            "convolution makes the image) or the channels of a stage at full "
                            f"resolution, e.g. 16; got {full_res_width!r}")
        if norm not in GENERATOR_NORMS:
            raise GansError(f"model.generator.norm must be one of {', '.join(GENERATOR_NORMS)}, "
                            f"got {norm!r}")
        if norm == "none" and num_classes:
            raise GansError("model.generator.norm none leaves the class-conditional generator "
                            "no way to read the class (its BatchNorm carries it): use norm batch "
                            "or self-modulated with data.conditional")
        batch_norm = norm != "none"
        self.modulated = norm == "self-modulated"
        if self.modulated and num_classes:
            # The class as a second latent of z's size, learned: N(0, 1) at the start, like z.
            self.class_embedding = nn.Embedding(num_classes, latent_dim)
        modulation_dim = latent_dim * (2 if self.modulated and num_classes else 1)

        def normalize(ch: int) -> nn.Module:
            if not batch_norm:
                return nn.Identity()
            if self.modulated:
                return SelfModulatedBatchNorm2d(ch, modulation_dim)
            return ConditionalBatchNorm2d(ch, num_classes) if num_classes else nn.BatchNorm2d(ch)

        doublings = _num_doublings(resolution)
        ch = width * 2 ** (doublings - 1)
        layers = [LatentProjection(latent_dim, ch), normalize(ch), nn.ReLU(True)]
        for _ in range(doublings - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=not batch_norm),
                       normalize(ch // 2), nn.ReLU(True)]
            ch //= 2
        if full_res_width:
            # The paper's last layer is linear in the half-resolution features, so each pixel
            # is a weighted sum of a 2x2 neighbourhood of them; a stage at full resolution
            # with a 3x3 convolution to the image gives the finest scale its own nonlinearity
            # (the last stage of SNGAN's "standard CNN" generator, Miyato et al. 2018).
            layers += [nn.ConvTranspose2d(ch, full_res_width, 4, 2, 1, bias=not batch_norm),
                       normalize(full_res_width), nn.ReLU(True),
                       nn.Conv2d(full_res_width, channels, 3, 1, 1), nn.Tanh()]
        else:
            layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        _init_weights(self)
        for m in self.modules():
            if isinstance(m, SelfModulatedBatchNorm2d):
                m.reset_output()

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = z.view(z.size(0), self.latent_dim, 1, 1)
        if not (self.num_classes or self.modulated):
            return self.net(x)
        if self.num_classes:
            check_labels(self, labels, z.size(0))
        condition = z.view(z.size(0), self.latent_dim) if self.modulated else labels
        if self.modulated and self.num_classes:
            condition = torch.cat([condition, self.class_embedding(labels)], dim=1)
        for layer in self.net:
            modulated = isinstance(layer, (ConditionalBatchNorm2d, SelfModulatedBatchNorm2d))
            x = layer(x, condition) if modulated else layer(x)
        return x


@DISCRIMINATORS.register("dcgan")
class DCGANDiscriminator(nn.Module):
    """`norm`: batch (the paper), or none (needed by gradient penalties, which assume each
    logit depends only on its own image). `spectral_norm` wraps every convolution.
    `mbstd_group` > 0 appends the minibatch standard deviation over groups of that many images
    at 4x4, before the last convolution, as StyleGAN's discriminator does; 0 leaves it out.
    `kernel` 3 makes the strided convolutions 3x3 (the paper's are 4x4): 9/16 of their
    multiply-adds, for a discriminator whose cost matters more than its strength per step
    (on Fashion-MNIST it lost more per step than it gained in speed, docs/models.md).
    `pack` > 1 scores that many images at once (PacGAN, Lin et al. 2018): consecutive images
    of the batch are stacked on the channel axis and get one logit, so D judges samples jointly
    and a generator that repeats itself is easier to catch; the batch must divide by it.
    With `num_classes` the last convolution yields features (not a logit): the logit is a
    linear output plus their inner product with the class embedding."""

    def __init__(self, width: int = 64, channels: int = 1, resolution: int = 32,
                 norm: str = "batch", spectral_norm: bool = False, mbstd_group: int = 0,
                 kernel: int = 4, pack: int = 1, num_classes: int = 0):
        super().__init__()
        self.num_classes, self.pack = num_classes, pack
        if isinstance(pack, bool) or not isinstance(pack, int) or pack < 1:
            raise GansError("model.discriminator.pack must be 1 (one image per logit) or the "
                            f"number of images scored together, e.g. 2; got {pack!r}")
        if pack > 1 and num_classes:
            raise GansError("model.discriminator.pack scores several images with one logit, "
                            "which cannot carry each image's class: use pack 1 with "
                            "data.conditional")
        if norm not in ("batch", "none"):
            raise GansError(f"model.discriminator.norm must be batch or none, got {norm!r}")
        if mbstd_group < 0:
            raise GansError("model.discriminator.mbstd_group must be 0 (off) or the number of "
                            f"images per minibatch-std group, e.g. 4; got {mbstd_group}")
        if kernel not in (3, 4):
            raise GansError(f"model.discriminator.kernel must be 3 or 4, got {kernel!r}")
        doublings = _num_doublings(resolution)
        wrap = _spectral_norm if spectral_norm else (lambda m: m)
        # Padding 1 halves the size for either kernel.
        layers = [wrap(nn.Conv2d(channels * pack, width, kernel, 2, 1)),
                  nn.LeakyReLU(0.2, True)]
        ch = width
        for _ in range(doublings - 1):
            layers.append(wrap(nn.Conv2d(ch, ch * 2, kernel, 2, 1, bias=norm == "none")))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        features = ch
        if mbstd_group:
            layers.append(MinibatchStd(mbstd_group))
            features += 1
        if num_classes:
            layers += [wrap(WholeImageConv(features, ch, 4, 1, 0)), nn.LeakyReLU(0.2, True)]
            self.out = wrap(nn.Linear(ch, 1))
            embed = nn.Embedding(num_classes, ch)
            # N(0, 0.02), as for the other layers, would leave the projection silent at first.
            nn.init.normal_(embed.weight, 0.0, 1.0 / math.sqrt(ch))
            self.embed = wrap(embed)
        else:
            layers.append(wrap(WholeImageConv(features, 1, 4, 1, 0)))
        self.net = nn.Sequential(*layers)
        _init_weights(self)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.pack > 1:
            n, c, h, w = images.shape
            if n % self.pack:
                raise GansError(f"model.discriminator.pack {self.pack} scores images in groups "
                                f"of {self.pack}; a batch of {n} does not divide: make "
                                f"train.batch_size a multiple of {self.pack}")
            images = images.reshape(n // self.pack, self.pack * c, h, w)
        if not self.num_classes:
            return self.net(images).view(images.size(0))
        check_labels(self, labels, images.size(0))
        h = self.net(images).flatten(1)
        return self.out(h).view(-1) + (self.embed(labels) * h).sum(1)
