"""Training images/s of gans (Lightning included) against a plain-PyTorch loop of the same step.

    python benchmarks/throughput.py [--model dcgan|stylegan-lite] [--resolution 32]
        [--width 64] [--batch 64] [--steps 40] [--rounds 3]
        [--variants ref,gans,gans:bf16+cl+fused,...] [--baseline ref] [--flops]

A variant is `SIDE[:OPTIONS]`. SIDE is `ref` (the plain-PyTorch loop below) or `gans` (GANModule
under lightning.Trainer). OPTIONS, joined by `+`: `bf16` (bfloat16 autocast; for gans the
Trainer's `precision=bf16-mixed`), `cl` (channels_last), `compile` (torch.compile of G and D),
`fused` / `foreach` / `loop` (Adam's kernels; default: torch's own default, the for-loop on a
CPU, for `ref`, and the recipe default `optim.implementation` for `gans`), and for `ref` only `guard` (the gradient norms and the
finiteness check with one host sync per update that GANModule does every step).

Both sides run the same algorithm, models, batch and data: non-saturating loss, one
discriminator update on real and detached fake (lazy R1 for StyleGAN-lite, as its recipe), then
one generator update with D frozen, EMA of G, Adam, uint8 images kept in memory and normalised
in the step, one G forward per step. Runs are interleaved (variant 1, 2, ..., 1, 2, ...) so
that drift on a shared machine hits all of them; the median of each is reported, with its
ratio to the baseline variant (default: the first, `ref`, the plain-PyTorch fp32 loop).

With --flops, FLOPs per step are counted with torch.utils.flop_counter on the reference step
(without lazy R1) and divided by time and by the machine's peak for the precision used (model FLOPs utilisation,
MFU). The peak is cores x FLOP/cycle/core x clock, from /proc/cpuinfo (see `cpu_peak`); a
core that boosts above that clock makes this MFU an overestimate, so the FLOP/s of a large
matrix product, measured right after in each precision, are printed too as a second yardstick.
The last line is `speedup_vs_reference: X.XX`: the best gans variant over the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import warnings

import pytorch_lightning as pl
import torch
from torch.optim.swa_utils import AveragedModel
from torch.utils.flop_counter import FlopCounterMode

from gans.objectives import losses
from gans.data import Images
from gans.training.datamodule import GANDataModule
from gans.hardware import cpu_fields, cpu_flags
from gans.models.build import build_networks
from gans.training.module import GANModule, ramped_ema
from gans.recipe import validate

OPTIONS = {"bf16", "cl", "compile", "fused", "foreach", "loop", "guard"}


def parse_variant(text: str) -> tuple[str, frozenset]:
    side, _, options = text.partition(":")
    chosen = frozenset(o for o in options.split("+") if o)
    if side not in ("ref", "gans") or not chosen <= OPTIONS or (side == "gans" and "guard" in chosen) \
            or len(chosen & {"fused", "foreach", "loop"}) > 1:
        raise SystemExit(f"bad variant {text!r}: SIDE[:OPTIONS] with SIDE ref or gans and "
                         f"OPTIONS from {'+'.join(sorted(OPTIONS))} (guard: ref only)")
    return side, chosen


def recipe_for(model: str, resolution: int, width: int, batch: int, steps: int,
               options: frozenset = frozenset()) -> dict:
    if model == "dcgan":
        nets = {"generator": {"name": "dcgan", "width": width},
                "discriminator": {"name": "dcgan", "width": width}}
        loss, optim = {"name": "non-saturating"}, {}
    else:  # the widths, betas and lazy R1 of recipes/stylegan-lite/fashion-mnist.yaml
        nets = {"generator": {"name": "stylegan-lite", "latent_dim": 256, "w_dim": 256,
                              "mapping_layers": 2, "channel_base": 1024, "channel_max": 128,
                              "style_mixing": 0.9},
                "discriminator": {"name": "stylegan-lite", "channel_base": 1024,
                                  "channel_max": 128, "mbstd_group": 4}}
        loss = {"name": "non-saturating", "r1_gamma": 0.05, "r1_every": 16}
        optim = {"generator": {"lr": 2.5e-3, "betas": [0.0, 0.99]},
                 "discriminator": {"lr": 2.5e-3, "betas": [0.0, 0.99]}}
    for token, implementation in (("fused", "fused"), ("foreach", "foreach"), ("loop", "for-loop")):
        if token in options:
            optim["implementation"] = implementation
    return {
        "model": nets, "loss": loss, "optim": optim,
        "data": {"name": "folder", "resolution": resolution, "channels": 1},
        "train": {"steps": steps, "batch_size": batch, "log_every": 10,
                  "sample_every": 10 ** 9, "checkpoint_every": 10 ** 9,
                  "compile": "compile" in options, "channels_last": "cl" in options},
    }


def make_images(n: int, resolution: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, resolution, resolution), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))


class ReferenceLoop:
    """The same GAN step written out in plain PyTorch, without Lightning or gans' module."""

    def __init__(self, recipe: dict, options: frozenset = frozenset()):
        self.recipe = validate(recipe)
        self.g, self.d = build_networks(self.recipe)
        if "cl" in options:
            self.g.to(memory_format=torch.channels_last)
            self.d.to(memory_format=torch.channels_last)
        self.ema = AveragedModel(self.g, multi_avg_fn=ramped_ema(0.999), use_buffers=True)
        if "compile" in options:
            self.g.compile()
            self.d.compile()
        kernels = ({"fused": True} if "fused" in options else
                   {"foreach": True} if "foreach" in options else {})
        opt = self.recipe.optim
        self.opt_g = torch.optim.Adam(self.g.parameters(), opt.generator.lr,
                                      betas=tuple(opt.generator.betas), **kernels)
        self.opt_d = torch.optim.Adam(self.d.parameters(), opt.discriminator.lr,
                                      betas=tuple(opt.discriminator.betas), **kernels)
        self.bf16 = "bf16" in options
        self.guard = "guard" in options
        self.d_steps = 0

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else \
            contextlib.nullcontext()

    def update(self, loss: torch.Tensor, optimizer, network: torch.nn.Module) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.guard:  # what GANModule's NaN guard costs: gradient norms and one host sync
            norm = torch.nn.utils.get_total_norm([p.grad for p in network.parameters()
                                                  if p.grad is not None])
            if not bool(torch.isfinite(norm) & torch.isfinite(loss.detach())):
                raise FloatingPointError("non-finite")
        optimizer.step()

    def step(self, pixels: torch.Tensor) -> None:
        loss_cfg = self.recipe.loss
        r1 = loss_cfg["r1_gamma"] > 0 and self.d_steps % loss_cfg["r1_every"] == 0
        self.d_steps += 1
        with self.autocast():
            real = pixels.float() / 127.5 - 1
            fake = self.g(torch.randn(real.size(0), self.g.latent_dim))
            if r1:
                real.requires_grad_(True)
            with torch.compiler.set_stance("force_eager") if r1 else contextlib.nullcontext():
                real_logits = self.d(real)
                d_loss = losses.non_saturating_d(real_logits, self.d(fake.detach()))
                if r1:
                    d_loss = d_loss + (0.5 * loss_cfg["r1_gamma"] * loss_cfg["r1_every"]) * \
                        losses.zero_centred_penalty(real, real_logits)
            self.update(d_loss, self.opt_d, self.d)
            self.d.requires_grad_(False)
            self.update(losses.non_saturating_g(self.d(fake)), self.opt_g, self.g)
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


def gans_images_per_sec(data, recipe_dict: dict, options: frozenset, steps: int,
                        warmup: int) -> float:
    recipe = validate(recipe_dict)
    batch = recipe.train.batch_size
    datamodule = GANDataModule(recipe.data, batch, recipe.seed)
    datamodule.images = Images(data, None, "random")
    module = GANModule(recipe.to_dict())
    clock = Clock(warmup)
    trainer = pl.Trainer(max_steps=(steps + warmup) * 2, accelerator="cpu", devices=1,
                         precision="bf16-mixed" if "bf16" in options else "32-true",
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[clock])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, datamodule=datamodule)
    return clock.timed * batch / clock.seconds


def flops_per_step(recipe: dict, batch: int, resolution: int) -> float:
    """FLOPs of one reference step as fp32 arithmetic, on a step without lazy R1.

    FlopCounterMode's module tracking cannot follow the autograd.grad of R1, so R1 (one step
    in 16 for StyleGAN-lite) is left out: the MFU of such a model reads slightly low.
    """
    loop = ReferenceLoop(recipe)
    loop.d_steps = 1  # past the step where lazy R1 runs
    with FlopCounterMode(display=False) as counter:
        loop.step(make_images(batch, resolution))
    return counter.get_total_flops()


def cpu_peak(threads: int) -> dict:
    """Peak FLOP/s of `threads` cores: cores x FLOP/cycle/core x clock, from /proc/cpuinfo.

    Assumed FLOP/cycle/core: two 512-bit FMA pipes on AMD family 26 (Zen 5): 2 x 16 fp32 lanes x
    2 = 64; 32 on other AVX-512 or AVX2+FMA x86 cores (Zen 4 runs 512-bit ops in two halves;
    most Intel cores with one 512-bit FMA port or two 256-bit ones). bf16 with AVX512_BF16:
    VDPBF16PS does 32 bf16 products and sums per 512-bit instruction, twice the fp32 rate.
    The clock is /proc/cpuinfo's `cpu MHz` (in a VM, usually the nominal clock: a core that
    boosts above it makes the MFU below an overestimate).
    """
    fields = cpu_fields()
    flags = cpu_flags()
    family = int(fields.get("cpu family", "0") or 0)
    vendor = fields.get("vendor_id", "")
    mhz = float(fields.get("cpu MHz", "0") or 0)
    fp32 = 64 if (vendor == "AuthenticAMD" and family >= 26 and "avx512f" in flags) else 32
    bf16 = 2 * fp32 if "avx512_bf16" in flags else fp32
    return {"model": fields.get("model name", "?"), "family": family, "mhz": mhz,
            "cores": threads, "fp32_per_cycle": fp32, "bf16_per_cycle": bf16,
            "fp32": threads * fp32 * mhz * 1e6, "bf16": threads * bf16 * mhz * 1e6}


def matmul_flops_per_sec(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of one large matrix product: what the cores sustain on the densest kernel there
    is, whatever their clock. Under boost it exceeds the nominal-clock peak of `cpu_peak`."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    torch.mm(a, b)  # oneDNN / BLAS set-up outside the timing
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size ** 3 * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=("dcgan", "stylegan-lite"), default="dcgan")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--width", type=int, default=64, help="DCGAN ngf = ndf")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default="ref,gans",
                        help="comma-separated SIDE[:OPTIONS], e.g. ref,gans:bf16+cl+fused")
    parser.add_argument("--baseline", default=None, help="variant the ratios divide by "
                                                         "(default: the first)")
    parser.add_argument("--flops", action="store_true", help="count FLOPs and print MFU")
    args = parser.parse_args()
    torch.manual_seed(0)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    variants = {name: parse_variant(name) for name in names}
    baseline = args.baseline or names[0]
    data = make_images(4096, args.resolution)
    results: dict = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, (side, options) in variants.items():
            recipe = recipe_for(args.model, args.resolution, args.width, args.batch,
                                args.steps + args.warmup, options)
            if side == "ref":
                rate = ReferenceLoop(recipe, options).images_per_sec(
                    data, args.batch, args.steps, args.warmup)
            else:
                rate = gans_images_per_sec(data, recipe, options, args.steps, args.warmup)
            results[name].append(rate)
            print(f"  {name}: {rate:.1f} img/s", flush=True)
    medians = {name: statistics.median(rates) for name, rates in results.items()}
    label = f"{args.model}-{args.resolution}" + (f" width {args.width}" if args.model == "dcgan"
                                                 else " (recipe widths)")
    print(f"{label}, batch {args.batch}, {torch.get_num_threads()} threads, {args.steps} timed "
          f"steps x {args.rounds} rounds, interleaved")
    flops = flops_per_step(recipe_for(args.model, args.resolution, args.width, args.batch, 1),
                           args.batch, args.resolution) if args.flops else None
    peak = cpu_peak(torch.get_num_threads())
    if flops:  # measured right after the steps, under the same load
        measured = {"fp32": matmul_flops_per_sec(torch.float32),
                    "bf16": matmul_flops_per_sec(torch.bfloat16)}
    for name in names:
        rates = ", ".join(f"{r:.0f}" for r in results[name])
        line = (f"{name:<28} img/s {medians[name]:7.1f}  (runs {rates})  "
                f"x{medians[name] / medians[baseline]:.2f} vs {baseline}")
        if flops:
            achieved = flops * medians[name] / args.batch
            precision = "bf16" if "bf16" in variants[name][1] else "fp32"
            line += (f"  {achieved / 1e9:.0f} GFLOP/s = MFU {100 * achieved / peak[precision]:.0f}% "
                     f"of {precision} peak, {100 * achieved / measured[precision]:.0f}% of "
                     f"{precision} matmul")
        print(line)
    if flops:
        print(f"GFLOP per step (batch {args.batch}): {flops / 1e9:.1f}; peak = {peak['cores']} "
              f"cores x {peak['fp32_per_cycle']} fp32 / {peak['bf16_per_cycle']} bf16 "
              f"FLOP/cycle x {peak['mhz']:.0f} MHz = {peak['fp32'] / 1e9:.0f} / "
              f"{peak['bf16'] / 1e9:.0f} GFLOP/s ({peak['model']}, family {peak['family']})")
        print(f"matmul 2048x2048 measured: {measured['fp32'] / 1e9:.0f} GFLOP/s fp32, "
              f"{measured['bf16'] / 1e9:.0f} GFLOP/s bf16")
    best = max((n for n in names if variants[n][0] == "gans"), key=medians.get, default=None)
    if best is not None:
        print(f"best gans variant: {best}")
        print(f"speedup_vs_reference: {medians[best] / medians[baseline]:.2f}")


if __name__ == "__main__":
    main()
