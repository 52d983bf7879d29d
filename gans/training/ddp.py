"""Data-parallel GAN training without one DDP wrapper around both networks."""

from __future__ import annotations

import torch
import torch.distributed as dist
from pytorch_lightning.strategies import DDPStrategy, StrategyRegistry


class GANDDPStrategy(DDPStrategy):
    """Data-parallel GAN training: Lightning's DDP launch, process group, samplers and
    collectives, without a DistributedDataParallel wrapper; after every backward, the gradients
    of that backward's network are averaged over ranks in one all-reduce.

    Lightning wraps the whole LightningModule in one DDP, which expects every parameter to get
    a gradient in every backward; a GAN's D step leaves G without one and its G step leaves D
    without one, so plain `ddp` fails, and `ddp_find_unused_parameters_true` pays for a graph
    search and an all-reduce of both networks in every backward. The step toggles its optimizer
    (only the network being trained requires grad), so the parameters to average are exactly
    those that require grad and hold a gradient. This is what NVlabs' StyleGAN3 training loop
    does by hand. docs/distributed.md has the measurements behind the choice.

    Buffers are not broadcast at every step as DDP's are: GANModule averages its running
    statistics itself after each generator update (`GANModule.average_buffers`).

    Every rank must backpropagate through the same parameters (true of GANModule's step).
    Averaging is linear, so several backward passes before one optimizer step (lazy
    regularization) stay correct.
    """

    strategy_name = "ddp_gan"

    def configure_ddp(self) -> None:
        # In place of DDP's constructor: every rank starts from rank 0's weights and buffers.
        for tensor in (*self.model.parameters(), *self.model.buffers()):
            dist.broadcast(tensor.data, src=0)

    def post_backward(self, closure_loss: torch.Tensor) -> None:
        super().post_backward(closure_loss)
        if self.world_size > 1:
            average_over_ranks([p.grad for p in self.lightning_module.parameters()
                                if p.requires_grad and p.grad is not None], self.world_size)


def average_over_ranks(tensors: list, world_size: int) -> None:
    """Replace each tensor by its mean over ranks, in place: one flat all-reduce per dtype."""
    by_dtype: dict = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.all_reduce(flat)
        flat /= world_size
        for t, mean in zip(group, flat.split([t.numel() for t in group])):
            t.copy_(mean.view_as(t))


if GANDDPStrategy.strategy_name not in StrategyRegistry:
    StrategyRegistry.register(GANDDPStrategy.strategy_name, GANDDPStrategy,
                              description="DDP for GANs: per-phase gradient averaging (gans)")
