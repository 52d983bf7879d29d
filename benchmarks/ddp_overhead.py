"""Milliseconds per generator step: one process against two DDP processes, per strategy.

    python benchmarks/ddp_overhead.py [--batch 64] [--steps 30] [--repeats 3] [--accelerator cpu]

Each configuration is its own `python benchmarks/ddp_overhead.py --worker ...` run (Lightning's
DDP launcher starts the second rank by running the same command again), so the figures include
everything a training step pays: gradient synchronisation, the DDP machinery, and on a small CPU
the two processes sharing the memory bus. The model is the classic DCGAN-32 (the quickstart's
until 2026-11-30: latent 100, width 64, non-saturating loss, EMA), on random images; the
per-process batch is the same in every row, so two processes train on twice the images per step.

Rows:
  1 process, C threads   one process with the threads one rank of two gets (cores / 2): the
                         same work per process as each DDP rank; the overhead is measured from it
  1 process, 2C threads  one process using every core, for reference
  2 separate runs        two independent one-process trainings at the same time, C threads each:
                         what sharing the machine costs without any synchronisation (the
                         slower of the two)
  ddp_gan                gans' default: no DDP wrapper, one all-reduce of the trained network's
                         gradients after each backward (gans/training/ddp.py, GANDDPStrategy)
  ddp_find_unused...     Lightning's DDP over the whole module, searching the graph for unused
                         parameters in every backward and reducing both networks every time
  separate DDP per net   G and D each in their own DistributedDataParallel, D's gradient sync
                         switched off during the G update (StyleGAN2-ADA's arrangement); defined
                         here only, for the comparison

Figures depend on the machine, and on other work running on it: repeat, compare the rows of one
invocation, and read the median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STRATEGIES = {
    "ddp_gan": "ddp_gan (default)",
    "ddp_find_unused_parameters_true": "ddp_find_unused_parameters_true",
    "separate": "separate DDP per network",
}


# ----------------------------------------------------------------------------- one configuration


def worker(args) -> None:
    import pytorch_lightning as pl
    import torch
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, TensorDataset

    import gans.training.run  # noqa: F401  (registers the ddp_gan strategy)
    from gans.training.module import GANModule
    from gans.recipe import validate

    class SeparateDDP(DistributedDataParallel):
        def __getattr__(self, name):  # latent_dim and friends of the wrapped network
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.module, name)

    class SeparateDDPStrategy(pl.strategies.DDPStrategy):
        def configure_ddp(self) -> None:
            ids = self.determine_ddp_device_ids()
            for name in ("generator", "discriminator"):
                setattr(self.model, name, SeparateDDP(getattr(self.model, name), device_ids=ids,
                                                      broadcast_buffers=False))

    class SeparateDDPModule(GANModule):
        def toggle_optimizer(self, optimizer) -> None:
            super().toggle_optimizer(optimizer)
            for net in (self.generator, self.discriminator):  # sync only the network trained
                if isinstance(net, DistributedDataParallel):
                    net.require_backward_grad_sync = any(p.requires_grad for p in net.parameters())

    class Clock(pl.Callback):
        def __init__(self):
            self.times = []

        def on_train_batch_end(self, trainer, *_):
            self.times.append(time.perf_counter())

    if args.threads:  # also in OMP_NUM_THREADS, which Lightning then leaves alone
        torch.set_num_threads(args.threads)
    recipe = validate({
        "model": {"generator": {"name": "dcgan", "latent_dim": 100, "width": 64},
                  "discriminator": {"name": "dcgan", "width": 64}},
        "data": {"resolution": 32, "channels": 1},
        "train": {"batch_size": args.batch, "log_every": 10, "sample_every": 10 ** 6}})
    pl.seed_everything(0, verbose=False)
    module = (SeparateDDPModule if args.strategy == "separate" else GANModule)(recipe.to_dict())
    images = torch.randint(0, 256, (args.batch * (args.steps + args.warmup) * args.devices,
                                    1, 32, 32), dtype=torch.uint8)
    loader = DataLoader(TensorDataset(images), batch_size=args.batch, shuffle=True,
                        drop_last=True)
    strategy = {"single": "auto", "separate": SeparateDDPStrategy()}.get(args.strategy,
                                                                         args.strategy)
    clock = Clock()
    trainer = pl.Trainer(accelerator=args.accelerator, devices=args.devices, strategy=strategy,
                         max_steps=2 * (args.steps + args.warmup), logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[clock])
    trainer.fit(module, train_dataloaders=loader)
    if trainer.is_global_zero:
        ms = [1000 * (b - a) for a, b in zip(clock.times, clock.times[1:])][args.warmup:]
        print("RESULT " + json.dumps({"ms": statistics.median(ms),
                                      "threads": torch.get_num_threads()}), flush=True)
    gans.training.run.leave_process_group()


# ----------------------------------------------------------------------------- the table


def run(args, strategy: str, devices: int, threads: int = 0) -> dict:
    """One configuration; strategy "apart" runs two one-process trainings side by side."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--strategy",
               "single" if strategy == "apart" else strategy, "--devices", str(devices),
               "--batch", str(args.batch), "--steps", str(args.steps),
               "--accelerator", args.accelerator, "--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)  # else Lightning's own choice: cores / ranks
    else:
        env.pop("OMP_NUM_THREADS", None)
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2 if strategy == "apart" else 1)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        found = [json.loads(line[len("RESULT "):]) for line in out.splitlines()
                 if line.startswith("RESULT ")]
        if not found:
            sys.exit(f"{strategy} on {devices} process(es) failed:\n{out[-2000:]}{err[-4000:]}")
        results += found
    return {"ms": max(r["ms"] for r in results), "threads": results[0]["threads"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="images per process and step")
    parser.add_argument("--steps", type=int, default=30, help="generator steps timed per run")
    parser.add_argument("--warmup", type=int, default=5, help="generator steps not timed")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--strategies", default=",".join(STRATEGIES),
                        help=f"comma-separated subset of {', '.join(STRATEGIES)}")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="single", help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    half = max(1, cores // 2) if args.accelerator == "cpu" else 0
    configs = [(f"1 process, {half or 'default'} thread(s)", "single", 1, half)]
    if half:
        configs.append((f"1 process, {cores} threads", "single", 1, cores))
    if half:
        configs.append(("2 separate 1-process runs at once (no sync)", "apart", 1, half))
    configs += [(f"2 processes, {STRATEGIES[s]}", s, 2, half)
                for s in args.strategies.split(",")]
    results = {name: [] for name, *_ in configs}
    for repeat in range(args.repeats):  # interleaved, so drifting machine load hits every row
        for name, strategy, devices, threads in configs:
            results[name].append(run(args, strategy, devices, threads))
            print(f"  run {repeat + 1}/{args.repeats}: {name}: "
                  f"{results[name][-1]['ms']:.1f} ms", file=sys.stderr, flush=True)

    base = statistics.median(r["ms"] for r in results[configs[0][0]])
    print(f"DCGAN 32x32 (quickstart), batch {args.batch} per process, {args.accelerator}, "
          f"{cores} cores; median of {args.repeats} runs x {args.steps} generator steps")
    print(f"{'configuration':<52} {'ms/G step':>9} {'threads/proc':>12} {'vs row 1':>9}")
    for name, *_ in configs:
        ms = statistics.median(r["ms"] for r in results[name])
        threads = results[name][0]["threads"]
        print(f"{name:<52} {ms:>9.1f} {threads:>12} {ms - base:>+8.1f}")


if __name__ == "__main__":
    main()
