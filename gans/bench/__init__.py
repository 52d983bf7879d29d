"""`gans bench SUITE.yaml`: GAN variants under one budget and several seeds; tables and plots.

A suite file names a base recipe (or one recipe per variant), the variants as overrides, the
seeds, one budget shared by every run and the evaluation protocol (docs/benchmarks.md has every
key). Each (variant, seed) is an ordinary `gans train` run in

    <out>/<suite>/<variant>/seed<k>/version_<n>/     the run (checkpoints, TensorBoard, samples)
    <out>/<suite>/<variant>/seed<k>/result.json      written last, atomically: the run is done

Runs go one after another in this process. A run with result.json is skipped; one with a
last.ckpt but no result.json resumes from it. When the runs are done, every finished run of the
suite goes into results.csv (one row per run), results.json, results.md (mean ± std over seeds,
one row per variant) and two plots, FID against kimg and against wall-clock time.

FID during training comes from the recipe's metrics section (set from the suite's `eval`); best
and final figures come from `gans eval` of checkpoints/best.ckpt and last.ckpt under the same
protocol. Wall-clock time is read from the TensorBoard event files, one file per training
session, so the time a run spent stopped between a kill and its resume is not counted.

One module per job: `suite` reads and checks the suite file, `plan` turns it into
runs with their recipes, `run` trains and evaluates them, `measure` says what each cost and how
its FID went, `report` writes the tables and plots.
"""

from gans.bench.plan import Run, describe_plan, plan_runs
from gans.bench.report import write_outputs
from gans.bench.run import run_suite
from gans.bench.suite import Suite, load_suite

__all__ = ["Run", "Suite", "describe_plan", "load_suite", "plan_runs", "run_suite",
           "write_outputs"]
