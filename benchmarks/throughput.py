"""Training images/s of gans (Lightning included) against a plain-PyTorch loop of the same step.

    python benchmarks/throughput.py [--resolution 32] [--width 64] [--batch 64] [--steps 60]
                                    [--rounds 3] [--precision 32-true]

Both sides run the same algorithm, models, batch and data: non-saturating DCGAN, one
discriminator update on real and detached fake, then one generator update with D frozen, EMA of
G, Adam, uint8 images kept in memory and normalised in the step. Runs alternate (reference, gans,
reference, gans, ...) so drift on a shared machine hits both; the median of each is reported.
FLOPs per step are counted with torch.utils.flop_counter and divided by time and by the machine
peak given with --peak-gflops (for the 2-core Zen 5 reference machine: 2 cores x 64 fp32
FLOP/cycle x 2.6 GHz = 333 GFLOP/s).
The last line is `speedup_vs_reference: X.XX` (gans img/s over reference img/s).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel
from torch.utils.flop_counter import FlopCounterMode

from gans.data import GANDataModule, Images
from gans.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gans.module import GANModule, ramped_ema
from gans.recipe import validate


def make_images(n: int, resolution: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, resolution, resolution), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))


class ReferenceLoop:
    """The canonical DCGAN step, written out in plain PyTorch."""

    def __init__(self, resolution: int, width: int, latent: int = 100):
        self.g = DCGANGenerator(latent, width, 1, resolution)
        self.d = DCGANDiscriminator(width, 1, resolution)
        self.ema = AveragedModel(self.g, multi_avg_fn=ramped_ema(0.999), use_buffers=True)
        self.opt_g = torch.optim.Adam(self.g.parameters(), 2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), 2e-4, betas=(0.5, 0.999))
        self.latent = latent

    def step(self, pixels: torch.Tensor) -> None:
        real = pixels.float() / 127.5 - 1
        fake = self.g(torch.randn(real.size(0), self.latent))
        d_loss = F.softplus(-self.d(real)).mean() + F.softplus(self.d(fake.detach())).mean()
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.d.requires_grad_(False)
        g_loss = F.softplus(-self.d(fake)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)
        self.ema.update_parameters(self.g)

    def images_per_sec(self, data: torch.Tensor, batch: int, steps: int, warmup: int) -> float:
        order = torch.randperm(len(data))
        batches = [data[order[i * batch:(i + 1) * batch]] for i in range(steps + warmup)]
        for b in batches[:warmup]:
            self.step(b)
        start = time.perf_counter()
        for b in batches[warmup:]:
            self.step(b)
        return steps * batch / (time.perf_counter() - start)


class Clock(pl.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.batches = warmup, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.batches == self.warmup:
            self.start = time.perf_counter()
        self.batches += 1

    def on_train_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.start
        self.timed = self.batches - self.warmup


def gans_images_per_sec(data, resolution, width, batch, steps, warmup, precision) -> float:
    recipe = validate({
        "model": {"generator": {"name": "dcgan", "width": width},
                  "discriminator": {"name": "dcgan", "width": width}},
        "data": {"name": "folder", "resolution": resolution, "channels": 1},
        "train": {"steps": steps + warmup, "batch_size": batch, "log_every": 10,
                  "sample_every": 10 ** 9, "checkpoint_every": 10 ** 9},
    })
    datamodule = GANDataModule(recipe.data, batch, recipe.seed)
    datamodule.images = Images(data, None, "random")
    module = GANModule(recipe.to_dict())
    clock = Clock(warmup)
    trainer = pl.Trainer(max_steps=(steps + warmup) * 2, accelerator="cpu", devices=1,
                         precision=precision, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[clock])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, datamodule=datamodule)
    return clock.timed * batch / clock.seconds


def flops_per_step(resolution: int, width: int, batch: int) -> int:
    loop = ReferenceLoop(resolution, width)
    pixels = make_images(batch, resolution)
    with FlopCounterMode(display=False) as counter:
        loop.step(pixels)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--peak-gflops", type=float, default=333.0)
    args = parser.parse_args()
    torch.manual_seed(0)
    data = make_images(4096, args.resolution)
    reference, ours = [], []
    for _ in range(args.rounds):
        loop = ReferenceLoop(args.resolution, args.width)
        reference.append(loop.images_per_sec(data, args.batch, args.steps, args.warmup))
        ours.append(gans_images_per_sec(data, args.resolution, args.width, args.batch,
                                        args.steps, args.warmup, args.precision))
    ref, gans = statistics.median(reference), statistics.median(ours)
    flops = flops_per_step(args.resolution, args.width, args.batch)
    print(f"DCGAN-{args.resolution} width {args.width} batch {args.batch}, "
          f"{torch.get_num_threads()} threads, gans precision {args.precision}")
    print(f"reference img/s: {', '.join(f'{r:.0f}' for r in reference)} (median {ref:.0f})")
    print(f"gans img/s:      {', '.join(f'{r:.0f}' for r in ours)} (median {gans:.0f})")
    print(f"GFLOP per step: {flops / 1e9:.1f}; gans GFLOP/s {flops / 1e9 * gans / args.batch:.0f}"
          f" = {100 * flops / 1e9 * gans / args.batch / args.peak_gflops:.0f}% of "
          f"{args.peak_gflops:.0f} GFLOP/s peak")
    print(f"speedup_vs_reference: {gans / ref:.2f}")


if __name__ == "__main__":
    main()
