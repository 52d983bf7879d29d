"""The tables and plots of a suite: every finished run on disk (results.csv), the mean ± std
over seeds per variant (results.json, results.md) and FID against kimg and against time."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Optional

from gans.bench.plan import RESULT, plan_runs, settings_difference
from gans.bench.suite import Suite
from gans.errors import GansError
from gans.files import atomic_write


def collect(suite: Suite, out: Path) -> list:
    """Every finished run of the suite on disk, in suite order (whatever --only ran now), made
    under the suite's present settings; one made under others is left out, with a warning."""
    results = []
    for run in plan_runs(suite, out):
        path = run.folder / RESULT
        if not path.is_file():
            continue
        try:
            result = json.loads(path.read_text())
        except ValueError:
            raise GansError(f"{path} is not valid JSON; delete it to redo that run's "
                            "evaluation") from None
        key = settings_difference(run, suite, result.get("settings"))
        if key is not None:
            print(f"gans bench: {path} was made under other settings ({key} differs from the "
                  "suite's): left out of the tables; delete it to redo that run", file=sys.stderr)
            continue
        results.append(result)
    return results


def run_row(result: dict, thresholds: list) -> dict:
    """One flat row of results.csv."""
    row = {"variant": result["variant"], "seed": result["seed"], "status": result["status"]}
    for which in ("best", "final"):
        for key, value in result.get(which, {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row[f"{which}_{key}"] = value
    for t in thresholds:
        hit = next((p for p in result["fid_curve"] if p[3] <= t), None)
        row[f"kimg_to_fid_{t:g}"] = hit[1] if hit else None
        row[f"minutes_to_fid_{t:g}"] = hit[2] / 60 if hit else None
    row.update({"generator_steps": result["generator_steps"], "kimg": result["kimg"],
                "train_minutes": result["train_seconds"] / 60,
                "eval_minutes": result["eval_seconds"] / 60,
                "images_per_sec": result["images_per_sec"],
                "peak_memory_mib": result["peak_memory_mib"],
                "peak_gpu_memory_mib": result["peak_gpu_memory_mib"],
                "device": result["device"], "device_hours": result["device_hours"],
                "energy_kwh": result["energy_kwh"]})
    return row


def summarize(suite: Suite, results: list) -> dict:
    """Per variant: for each numeric column, mean, std (when more than one seed) and count."""
    rows = [run_row(r, suite.thresholds) for r in results]
    summary = {}
    for variant in suite.variants:
        mine = [row for row in rows if row["variant"] == variant.name]
        if not mine:
            continue
        columns = {}
        for key in dict.fromkeys(k for row in mine for k in row):
            if key in ("variant", "seed", "status", "device"):
                continue
            values = [row.get(key) for row in mine]
            numbers = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
            columns[key] = {"mean": statistics.fmean(numbers) if numbers else None,
                            "std": statistics.stdev(numbers) if len(numbers) > 1 else None,
                            "n": len(numbers)}
        summary[variant.name] = {"runs": len(mine),
                                 "diverged": sum(row["status"] == "diverged" for row in mine),
                                 "seeds": [row["seed"] for row in mine],
                                 "reference_fid": variant.reference_fid, **columns}
    return summary


def write_outputs(suite: Suite, out: Path) -> list:
    folder = Path(out) / suite.name
    results = collect(suite, out)
    rows = [run_row(r, suite.thresholds) for r in results]
    summary = summarize(suite, results)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    methods = sorted({r["energy_method"] for r in results})
    document = {"suite": suite.name, "description": suite.description,
                "budget": dict([suite.budget]), "seeds": suite.seeds,
                "eval": suite.eval.as_dict(), "thresholds": suite.thresholds,
                "protocol": suite.describe_eval(), "energy_method": methods,
                "variants": summary,
                "runs": [{k: v for k, v in r.items() if k != "settings"} for r in results]}
    outputs = {
        "results.csv": buffer.getvalue(),
        "results.json": json.dumps(document, indent=2, default=str) + "\n",
        "results.md": markdown(suite, results, summary),
    }
    paths = []
    for name, text in outputs.items():
        atomic_write(folder / name, lambda f, text=text: f.write(text.encode()))
        paths.append(folder / name)
    for name, x in (("fid_vs_kimg.png", "kimg"), ("fid_vs_time.png", "minutes")):
        png = plot(suite, results, x)
        atomic_write(folder / name, lambda f, png=png: f.write(png))
        paths.append(folder / name)
    return paths


def fmt(value: Optional[float], digits: int) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if digits < 0:  # significant figures, for quantities that span orders of magnitude
        return f"{value:.{-digits}g}"
    return f"{value:.{digits}f}"


def _cell(column: Optional[dict], digits: int, runs: int) -> str:
    if not column or column["mean"] is None:
        return "–"
    text = fmt(column["mean"], digits)
    if column["std"] is not None:
        text += f" ± {fmt(column['std'], digits)}"
    if column["n"] < runs:
        text += f" ({column['n']}/{runs})"
    return text


def markdown(suite: Suite, results: list, summary: dict) -> str:
    devices = sorted({r["device"] for r in results})
    methods = sorted({r["energy_method"] for r in results})
    has_kid = any("kid" in r.get("best", {}) for r in results)
    has_reference = any(v.reference_fid for v in suite.variants)
    header = ["variant", "runs", "best FID", "final FID"]
    if has_reference:
        header.append("paper FID")
    if has_kid:
        header += ["best KID", "final KID"]
    for t in suite.thresholds:
        header += [f"kimg to FID ≤ {t:g}", f"min to FID ≤ {t:g}"]
    header += ["kimg", "train min", "img/s", "peak MiB", "device-hours", "energy Wh"]
    lines = [f"# {suite.name}", ""]
    if suite.description:
        lines += [suite.description.strip(), ""]
    lines += [f"- budget: {suite.describe_budget()} per run; seeds: "
              f"{', '.join(map(str, suite.seeds))}",
              f"- protocol: {suite.describe_eval()}",
              f"- device: {'; '.join(devices) or '–'}",
              f"- energy: {'; '.join(methods) or '–'}",
              "- cells: mean ± sample std over seeds; (n/k) where only n of k runs have the "
              "figure; best = best.ckpt by the FID tracked during training"]
    if has_reference and suite.reference_fid_source:
        lines.append(f"- paper FID: {suite.reference_fid_source}")
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in suite.variants:
        s = summary.get(variant.name)
        if s is None:
            continue
        runs = s["runs"]
        shown = f"{runs}" + (f" ({s['diverged']} diverged)" if s["diverged"] else "")
        cells = [variant.name, shown, _cell(s.get("best_fid"), 2, runs),
                 _cell(s.get("final_fid"), 2, runs)]
        if has_reference:
            ref = variant.reference_fid
            cells.append("–" if not ref else " ± ".join(f"{v:g}" for v in ref))
        if has_kid:
            cells += [_cell(s.get("best_kid"), 4, runs), _cell(s.get("final_kid"), 4, runs)]
        for t in suite.thresholds:
            cells += [_cell(s.get(f"kimg_to_fid_{t:g}"), 1, runs),
                      _cell(s.get(f"minutes_to_fid_{t:g}"), 1, runs)]
        energy = s.get("energy_kwh")
        energy_wh = dict(energy, mean=energy["mean"] * 1000 if energy["mean"] is not None
                         else None, std=energy["std"] * 1000 if energy["std"] is not None
                         else None) if energy else None
        cells += [_cell(s.get("kimg"), 1, runs), _cell(s.get("train_minutes"), 1, runs),
                  _cell(s.get("images_per_sec"), 0, runs),
                  _cell(s.get("peak_memory_mib"), 0, runs),
                  _cell(s.get("device_hours"), -3, runs), _cell(energy_wh, -3, runs)]
        lines.append("| " + " | ".join(cells) + " |")
    missing = [f"{v.name} seed {seed}" for v in suite.variants for seed in suite.seeds
               if not any(r["variant"] == v.name and r["seed"] == seed for r in results)]
    if missing:
        lines += ["", f"Not run yet: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def plot(suite: Suite, results: list, x: str) -> bytes:
    """FID tracked during training against kimg or minutes: per variant, the mean over seeds
    at each evaluation (a band of ± one std with several seeds)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    column = 1 if x == "kimg" else 2
    drawn = False
    for variant in suite.variants:
        by_step: dict = {}
        for r in results:
            if r["variant"] == variant.name:
                for point in r["fid_curve"]:
                    by_step.setdefault(point[0], []).append(point)
        if not by_step:
            continue
        steps = sorted(by_step)
        xs = [statistics.fmean(p[column] for p in by_step[s]) / (60 if x == "minutes" else 1)
              for s in steps]
        ys = [statistics.fmean(p[3] for p in by_step[s]) for s in steps]
        line, = ax.plot(xs, ys, marker="o", markersize=3, label=variant.name)
        spread = [statistics.stdev(p[3] for p in by_step[s]) if len(by_step[s]) > 1 else 0.0
                  for s in steps]
        if any(spread):
            ax.fill_between(xs, [y - d for y, d in zip(ys, spread)],
                            [y + d for y, d in zip(ys, spread)], color=line.get_color(),
                            alpha=0.2, linewidth=0)
        drawn = True
    for t in suite.thresholds:
        ax.axhline(t, color="grey", linestyle=":", linewidth=0.8)
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no FID tracked during training (eval.every: 0)",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("kimg (real images shown to D, thousands)" if x == "kimg"
                  else "wall-clock minutes of training (FID evaluations included)")
    ax.set_xlim(left=0)
    ax.set_ylabel("FID")
    ax.set_title(f"{suite.name}: FID during training", fontsize=10)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
