"""A user's own generator, plugged in by dotted path in tests/test_registry.py."""

from torch import nn


class TinyGenerator(nn.Module):
    def __init__(self, latent_dim: int = 4, channels: int = 1, resolution: int = 16):
        super().__init__()
        self.latent_dim = latent_dim
        self.shape = (channels, resolution, resolution)
        self.net = nn.Sequential(nn.Linear(latent_dim, channels * resolution * resolution),
                                 nn.Tanh())

    def forward(self, z, labels=None):
        return self.net(z).view(z.size(0), *self.shape)


class NoLatentDim(nn.Module):
    """A generator that forgot to say how long its latents are."""

    def __init__(self, channels: int = 1, resolution: int = 16):
        super().__init__()
        self.net = nn.Linear(4, channels * resolution * resolution)

    def forward(self, z, labels=None):
        return self.net(z)
