"""The training curves of a pix2pix run, from its TensorBoard events (gans/runlog.py): the
weighted L1 term, G's and D's adversarial terms, against the generator step.

    python benchmarks/pix2pix_curves.py runs/fashion-mnist-edges/version_0 --out curves.png

Prints the first and last logged value of each term and the run's training time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TERMS = ("loss/l1", "loss/g_adversarial", "loss/d_adversarial")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run directory (runs/NAME/version_N)")
    parser.add_argument("--out", type=Path, required=True, help="the figure (.png)")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from gans.runlog import read_run

    log = read_run(args.run)
    missing = [tag for tag in TERMS if not log.curve(tag)]
    if missing:
        raise SystemExit(f"{args.run}: no {', '.join(missing)} in its events; "
                         f"logged: {', '.join(log.tags())}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    l1 = log.curve("loss/l1")
    axes[0].plot([s for s, _, _ in l1], [v for _, _, v in l1], color="#2563eb")
    axes[0].set(title="l1_weight x L1 to the target", xlabel="generator step")
    for tag, colour in (("loss/g_adversarial", "#dc2626"), ("loss/d_adversarial", "#16a34a")):
        points = log.curve(tag)
        axes[1].plot([s for s, _, _ in points], [v for _, _, v in points], label=tag[5:],
                     color=colour)
    axes[1].set(title="adversarial terms", xlabel="generator step")
    axes[1].legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    for tag in TERMS:
        points = log.curve(tag)
        print(f"{tag}: {points[0][2]:.3f} at step {points[0][0]} -> {points[-1][2]:.3f} at step "
              f"{points[-1][0]}")
    print(f"training time: {log.seconds:.0f} s over {len(log.sessions)} session(s)")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
