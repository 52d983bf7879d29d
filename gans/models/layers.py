"""Layers more than one network family uses."""

from __future__ import annotations

import torch
from torch import nn


class MinibatchStd(nn.Module):
    """Appends the standard deviation of features across a group of images (Karras et al. 2018):
    lets D see the variety of a batch, which penalises a generator that collapses to few
    outputs. Images of a group share the statistic, so D's output for one image depends on the
    others of its group; StyleGAN2 pairs it with R1 all the same."""

    def __init__(self, group_size: int):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = next(g for g in range(min(self.group_size, n), 0, -1) if n % g == 0)
        y = x.reshape(group, n // group, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # (n/group, c, h, w)
        y = y.mean((1, 2, 3)).reshape(-1, 1, 1, 1).repeat(group, 1, h, w)
        return torch.cat([x, y], dim=1)
