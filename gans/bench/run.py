"""Doing a suite: each unfinished run trained (or resumed), its best and last checkpoints
evaluated under the suite's protocol, its result.json written; then the tables."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Optional

from gans.bench.measure import PeakMemory, describe_device, fid_curve, images_per_sec, \
    power_estimate
from gans.bench.plan import RESULT, Run, check_same_settings, describe_budget, describe_plan, \
    latest_checkpoint, plan_runs, run_state, settings
from gans.bench.report import fmt, write_outputs
from gans.bench.suite import EvalSpec, Suite, load_suite
from gans.errors import GansError
from gans.files import atomic_write, ensure_writable_folder
from gans.runlog import RunLog, read_run
from gans.training.clock import Clock

RESULT_VERSION = 1


def run_suite(path: Path, out: Path, only: Optional[list] = None, dry_run: bool = False,
              watts: Optional[float] = None) -> int:
    """Check the suite, do its unfinished runs, then write the tables and plots."""
    if watts is not None and not (math.isfinite(watts) and watts > 0):
        raise GansError(f"--watts must be a positive number (average power in W), got {watts}")
    suite = load_suite(path)
    runs = plan_runs(suite, out, only)
    if dry_run:
        print(describe_plan(suite, runs, out))
        return 0
    states = [run_state(run) for run in runs]
    for run, (state, where) in zip(runs, states):  # before any training: a mismatch stops all
        if state == "done":
            check_same_settings(run, suite, where)
    folder = Path(out) / suite.name
    ensure_writable_folder(folder, "pass --out with a writable folder")
    for i, (run, (state, where)) in enumerate(zip(runs, states), 1):
        prefix = f"gans bench: [{i}/{len(runs)}] {run.label}"
        if state == "done":
            print(f"{prefix}: finished earlier, skipped ({where})", file=sys.stderr)
            continue
        print(f"{prefix}: " + (f"resuming from {where}" if state == "resume" else
                               f"training ({describe_budget(run)})"), file=sys.stderr)
        result = execute(run, suite, resume=where, watts=watts if watts is not None
                         else suite.watts)
        print(f"{prefix}: {result['status']}, best FID {fmt(result['best'].get('fid'), 2)}, "
              f"final FID {fmt(result['final'].get('fid'), 2)}", file=sys.stderr)
    paths = write_outputs(suite, out)
    print((folder / "results.md").read_text(), end="")
    print("\n".join(str(p) for p in paths))
    return 0


def execute(run: Run, suite: Suite, resume: Optional[Path] = None,
            watts: Optional[float] = None) -> dict:
    """Train (or resume) one run, evaluate best and last, write its result.json."""
    from gans.training.module import TrainingDiverged
    from gans.training.run import train

    peak = PeakMemory()
    status, message = "finished", None
    started = time.monotonic()
    try:
        run_dir = train(run.recipe, run.folder.parent, resume=resume)
    except TrainingDiverged as diverged:
        # A diverged run is a result, as in Lucic et al.: its last good state is evaluated.
        status, message = "diverged", str(diverged)
        checkpoint = latest_checkpoint(run.folder)
        run_dir = checkpoint.parent.parent if checkpoint is not None else None
    session_seconds = time.monotonic() - started
    eval_started = time.monotonic()
    best, final = {}, {}
    if run_dir is not None:
        last = run_dir / "checkpoints" / "last.ckpt"
        final = _evaluate(last, suite.eval, run.seed)
        best_ckpt = run_dir / "checkpoints" / "best.ckpt"
        if not best_ckpt.is_file():
            best = {**final, "note": "no best.ckpt (FID not tracked during training): the last "
                    "checkpoint"}
        elif _global_step(best_ckpt) == _global_step(last):
            # The same weights: FID's 2048x2048 matrix square root costs seconds on a CPU.
            best = {**final, "checkpoint": best_ckpt.name, "note": "best.ckpt is the last step"}
        else:
            best = _evaluate(best_ckpt, suite.eval, run.seed)
    eval_seconds = time.monotonic() - eval_started
    log = read_run(run_dir) if run_dir is not None else RunLog(())
    train_seconds = log.seconds or session_seconds
    r = run.recipe
    clock = Clock.of(r)
    steps = clock.g_steps(_global_step(run_dir / "checkpoints" / "last.ckpt")) \
        if run_dir is not None else 0
    device = describe_device(r.trainer)
    device_seconds = train_seconds + eval_seconds
    power, method = power_estimate(device, watts)
    result = {
        "version": RESULT_VERSION,
        "suite": suite.name, "variant": run.variant.name, "seed": run.seed,
        "status": status, "message": message,
        "run_dir": os.path.relpath(run_dir, run.folder) if run_dir is not None else None,
        "generator_steps": steps, "kimg": clock.kimg_at(steps),
        "train_seconds": train_seconds, "eval_seconds": eval_seconds,
        "images_per_sec": images_per_sec(log),
        "peak_memory_mib": peak.read_mib(),
        "peak_memory_kind": peak.kind,
        "peak_gpu_memory_mib": peak.gpu_mib() if device["kind"] == "cuda" else None,
        "device": device["name"], "devices": device["count"],
        "device_hours": device["count"] * device_seconds / 3600,
        "energy_kwh": power * device["count"] * device_seconds / 3.6e6,
        "energy_method": method,
        "fid_curve": fid_curve(log, clock),
        "best": best, "final": final,
        "settings": settings(run, suite),
    }
    text = json.dumps(result, indent=2, default=str) + "\n"
    atomic_write(run.folder / RESULT, lambda f: f.write(text.encode()))
    return result


def _evaluate(checkpoint: Path, spec: EvalSpec, seed: int) -> dict:
    from gans.evaluation.evaluate import EvalOptions, evaluate

    figures = evaluate(checkpoint, EvalOptions(
        metrics=spec.metrics, num_fake=spec.num_fake, reference=spec.reference,
        num_real=spec.num_real, batch_size=spec.batch_size, seed=seed))
    out: dict = {"checkpoint": checkpoint.name}
    for name, figure in figures.items():
        out[name] = figure["value"]
        if "std" in figure:
            out[f"{name}_std"] = figure["std"]
    fid = figures["fid"]
    out["protocol"] = {k: fid[k] for k in ("extractor", "weights_sha256", "num_fake", "num_real",
                                           "reference", "resize", "seed") if k in fid}
    return out


def _global_step(checkpoint: Path) -> int:
    from gans.sampling.checkpoint import read_checkpoint

    return read_checkpoint(checkpoint)["global_step"]
