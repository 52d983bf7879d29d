"""FID against minutes of training, from the checkpoints a run kept.

    gans train RECIPE --set train.keep_checkpoints=true ...
    python benchmarks/fid_vs_minutes.py runs/NAME/version_0 [RUN_DIR ...] \\
        --num-fake 2000 --out fid-vs-minutes.png

Each run's checkpoints/step-*.ckpt (`train.keep_checkpoints`) and its last.ckpt are evaluated
under one protocol (`gans eval`'s, against the test split), so the curve does not mix
protocols. A checkpoint's minutes come from its run's TensorBoard events (gans/runlog.py): the
training time when its generator step's scalars were logged, FID evaluations during training
included. Prints the table and writes the plot, with the points beside it as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def minutes_at(log, step: int) -> float:
    """Training minutes when `step` (or the last logged step before it) was logged."""
    logged = [(s, seconds) for s, seconds, _ in log.curve("kimg") if s <= step]
    if not logged:
        raise SystemExit(f"no 'kimg' scalar logged at or before generator step {step}")
    return logged[-1][1] / 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run directories (runs/NAME/version_N)")
    parser.add_argument("--add", type=Path, action="append", default=[],
                        help="the JSON of an earlier invocation: its curves join the plot as "
                             "they are, without evaluating again")
    parser.add_argument("--num-fake", type=int, default=2000)
    parser.add_argument("--reference", default="test")
    parser.add_argument("--every", type=int, default=1,
                        help="evaluate every Nth kept checkpoint (and last.ckpt)")
    parser.add_argument("--out", type=Path, required=True, help="the figure (.png)")
    parser.add_argument("--title", default="FID against training time")
    args = parser.parse_args()

    import torch

    from gans.evaluation.evaluate import EvalOptions, evaluate
    from gans.recipe import Recipe
    from gans.runlog import read_run
    from gans.training.clock import Clock

    curves = {}
    for earlier in args.add:
        curves.update(json.loads(earlier.read_text()))
    if not curves and not args.runs:
        parser.error("give run directories, or --add an earlier JSON")
    for run_dir in args.runs:
        checkpoints = sorted(run_dir.glob("checkpoints/step-*.ckpt"))[args.every - 1::args.every] \
            + sorted(run_dir.glob("checkpoints/last.ckpt"))
        if not checkpoints:
            raise SystemExit(f"{run_dir}: no checkpoints/step-*.ckpt or last.ckpt; train with "
                             "--set train.keep_checkpoints=true")
        log, clock = read_run(run_dir), Clock.of(Recipe.load(run_dir / "recipe.yaml"))
        points, steps_done = [], set()
        for checkpoint in checkpoints:
            step = clock.g_steps(torch.load(checkpoint, map_location="cpu", weights_only=True,
                                            mmap=True)["global_step"])
            if step in steps_done:  # last.ckpt at a kept step
                continue
            steps_done.add(step)
            fid = evaluate(checkpoint, EvalOptions(metrics=("fid",), num_fake=args.num_fake,
                                                   reference=args.reference))["fid"]
            points.append({"checkpoint": str(checkpoint), "generator_step": step,
                           "kimg": clock.kimg_at(step), "minutes": minutes_at(log, step),
                           "fid": fid["value"]})
            print(f"{run_dir}  step {step:6d}  {points[-1]['kimg']:7.1f} kimg  "
                  f"{points[-1]['minutes']:5.1f} min  FID {fid['value']:.2f}", flush=True)
        curves[str(run_dir)] = sorted(points, key=lambda p: p["generator_step"])

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run_dir, points in curves.items():
        ax.plot([p["minutes"] for p in points], [p["fid"] for p in points], marker="o",
                markersize=3, label=Path(run_dir).parent.name)
    ax.set_xlabel("minutes of training")
    ax.set_ylabel(f"FID ({args.num_fake} generated vs the {args.reference} split)")
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3, which="both")
    ax.set_title(args.title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    args.out.with_suffix(".json").write_text(json.dumps(curves, indent=2) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
