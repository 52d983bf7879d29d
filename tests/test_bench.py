"""`gans bench`: the shipped smoke suite end to end, skipping and resuming, --only, budgets,
tables, and bad suites refused before anything is written."""

import csv
import json
import math
import time
from pathlib import Path

import pytest
import yaml

from gans import bench
from gans.bench import measure, report
from gans.bench.plan import UNLIMITED_STEPS
from gans.cli import main

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "recipes" / "bench" / "smoke.yaml"
LUCIC = REPO / "recipes" / "bench" / "lucic-fashion-mnist.yaml"
LUCIC_CPU = REPO / "recipes" / "bench" / "lucic-fashion-mnist-cpu.yaml"
FAMILIES = REPO / "recipes" / "bench" / "families-fashion-mnist-30min.yaml"
# The non-saturating DCGAN, which the smoke suite builds on: other losses replace its name alone.
DCGAN = REPO / "recipes" / "dcgan" / "fashion-mnist.yaml"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The shipped smoke suite, run once: (suite output folder, seconds it took)."""
    out = tmp_path_factory.mktemp("bench")
    started = time.monotonic()
    assert main(["bench", str(SMOKE), "--out", str(out)]) == 0
    return out / "smoke", time.monotonic() - started


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_smoke_suite_writes_tables_and_plots(smoke):
    folder, seconds = smoke
    print(f"smoke suite: {seconds:.1f} s")
    for name in ("results.csv", "results.json", "results.md"):
        assert (folder / name).stat().st_size > 0
    for name in ("fid_vs_kimg.png", "fid_vs_time.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = read_csv(folder / "results.csv")
    assert [(r["variant"], r["seed"], r["status"]) for r in rows] == [
        ("ns-gan", "0", "finished"), ("hinge-sn", "0", "finished")]
    for row in rows:
        for key in ("best_fid", "final_fid", "best_kid", "final_kid", "images_per_sec",
                    "peak_memory_mib", "device_hours", "energy_kwh", "train_minutes"):
            assert math.isfinite(float(row[key])) and float(row[key]) >= 0, key
        assert row["generator_steps"] == "20" and float(row["kimg"]) == pytest.approx(0.32)
        assert "kimg_to_fid_450" in row and "minutes_to_fid_400" in row
    document = json.loads((folder / "results.json").read_text())
    assert list(document["variants"]) == ["ns-gan", "hinge-sn"]
    assert document["energy_method"][0].startswith("estimate:")
    for run in document["runs"]:
        assert [point[0] for point in run["fid_curve"]] == [20]
        assert run["best"]["protocol"]["num_fake"] == 20
        assert run["best"]["protocol"]["reference"]["split"] == "test"
    table = (folder / "results.md").read_text()
    assert table.count("\n| ns-gan | 1 |") == 1 and table.count("\n| hinge-sn | 1 |") == 1
    assert "± " not in table.split("| variant |")[1]  # one seed: no spread to show


def test_rerun_skips_finished_runs(smoke, capsys):
    folder, _ = smoke
    results = sorted(folder.glob("*/seed0/result.json"))
    before = [p.stat().st_mtime_ns for p in results]
    started = time.monotonic()
    assert main(["bench", str(SMOKE), "--out", str(folder.parent)]) == 0
    assert time.monotonic() - started < 30  # nothing trained or evaluated again
    assert capsys.readouterr().err.count("finished earlier, skipped") == 2
    assert [p.stat().st_mtime_ns for p in results] == before
    assert not list(folder.glob("*/seed0/version_1"))

    # A result written before gans had a recipe key is still reused while the key is at its
    # default; the same key at another value is a change of settings.
    result = json.loads(results[0].read_text())
    del result["settings"]["recipe"]["metrics"]["inception_compile"]
    results[0].write_text(json.dumps(result))
    assert main(["bench", str(SMOKE), "--out", str(folder.parent)]) == 0
    assert capsys.readouterr().err.count("finished earlier, skipped") == 2
    result["settings"]["recipe"]["metrics"]["inception_compile"] = True
    results[0].write_text(json.dumps(result))
    assert main(["bench", str(SMOKE), "--out", str(folder.parent)]) == 2
    assert "metrics.inception_compile differs" in capsys.readouterr().err
    del result["settings"]["recipe"]["metrics"]["inception_compile"]
    results[0].write_text(json.dumps(result))


def test_unfinished_run_resumes_and_only_filters(smoke, tmp_path, capsys):
    folder, _ = smoke
    # The same suite with a longer budget; ns-gan's result is gone, its last.ckpt (step 20) kept.
    suite = yaml.safe_load(SMOKE.read_text())
    suite["base"] = str(DCGAN)
    suite["budget"] = {"steps": 40}
    longer = tmp_path / "smoke.yaml"
    longer.write_text(yaml.safe_dump(suite, sort_keys=False))
    (folder / "ns-gan" / "seed0" / "result.json").unlink()
    other = folder / "hinge-sn" / "seed0" / "result.json"
    other_before = other.read_bytes()

    assert main(["bench", str(longer), "--out", str(folder.parent), "--only", "ns-gan"]) == 0
    err = capsys.readouterr().err
    assert "ns-gan seed 0: resuming from" in err and "hinge-sn seed 0" not in err
    result = json.loads((folder / "ns-gan" / "seed0" / "result.json").read_text())
    assert result["generator_steps"] == 40 and result["run_dir"] == "version_0"
    assert [point[0] for point in result["fid_curve"]] == [20, 40]  # one from each session
    assert not (folder / "ns-gan" / "seed0" / "version_1").exists()
    assert other.read_bytes() == other_before  # --only left it alone, but its 20 steps
    assert [r["variant"] for r in read_csv(folder / "results.csv")] == ["ns-gan"]  # are stale
    assert "hinge-sn/seed0/result.json was made under other settings (recipe.train.steps" in err
    assert "hinge-sn seed 0" in (folder / "results.md").read_text()  # listed as not run

    # The shipped suite (20 steps) now disagrees with ns-gan's finished 40-step run: a dry run
    # says so, and a real one is refused.
    assert main(["bench", str(SMOKE), "--out", str(folder.parent), "--dry-run"]) == 0
    assert "done under other settings (recipe.train.steps)" in capsys.readouterr().out
    assert main(["bench", str(SMOKE), "--out", str(folder.parent)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "train.steps" in err and "delete that result.json" in err


def test_lucic_suite_validates_in_a_dry_run(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", str(LUCIC), "--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "5 variants x 3 seeds = 15 runs" in printed
    assert "wgan-gp seed 2        3750 generator steps, 1200 kimg" in printed
    assert "ns-gan seed 0         18750 generator steps" in printed
    assert "from 10000 generated images; against 10000 real images of the test split" in printed
    assert not out.exists()


def flat(raw, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out = {}
    for key, value in raw.items():
        out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict)
                   else {f"{prefix}{key}": value})
    return out


def test_lucic_cpu_suite_is_the_full_suite_at_its_own_budget(tmp_path, capsys):
    """What its header promises: the same variants, seeds 0 and 1, 120 kimg (2 epochs of the
    60k training images), FID tracked from 500 images every 40 kimg, then from 2,000 against
    the 10k test images."""
    full, cpu = bench.load_suite(LUCIC), bench.load_suite(LUCIC_CPU)
    assert cpu.name == "lucic-fashion-mnist-cpu" and cpu.seeds == [0, 1]
    assert [v.name for v in cpu.variants] == [v.name for v in full.variants]
    assert (cpu.eval.num_fake, cpu.eval.num_real, cpu.eval.reference) == (2000, 10000, "test")
    assert set(cpu.eval.metrics) == {"fid", "kid"}
    same_seed = {(r.variant.name, r.seed): r.recipe for r in bench.plan_runs(full, tmp_path / "full")}
    runs = bench.plan_runs(cpu, tmp_path / "out")
    assert len(runs) == 10
    for run in runs:
        recipe = run.recipe
        images_per_step = recipe.train.batch_size * recipe.train.n_critic  # real images to D
        assert recipe.train.steps * images_per_step == 120_000, run.variant.name
        assert recipe.metrics.fid_every * images_per_step == 40_000, run.variant.name
        assert recipe.metrics.fid_num_fake == 500
        assert (recipe.train.checkpoint_every, recipe.train.sample_every,
                recipe.train.log_every) == (250, 500, 25)
        # Everything else (losses, optimizers, networks, data) is the full suite's.
        ours, theirs = flat(recipe.to_dict()), flat(same_seed[run.variant.name, run.seed].to_dict())
        differing = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
        assert differing == {"train.steps", "train.checkpoint_every", "train.sample_every",
                             "train.log_every", "metrics.fid_every", "metrics.fid_num_fake"}
    out = tmp_path / "dry"
    assert main(["bench", str(LUCIC_CPU), "--dry-run", "--out", str(out)]) == 0
    assert "5 variants x 2 seeds = 10 runs" in capsys.readouterr().out
    assert not out.exists()


def test_families_suite_runs_each_shipped_recipe_for_30_minutes(tmp_path, capsys):
    """The family table's promise: each family's own Fashion-MNIST recipe as shipped, changed
    only in what the suite owns (name, seed, the time budget, FID tracking), and evaluated on
    10k generated images against the 10k test images."""
    from gans.recipe import load_recipe

    suite = bench.load_suite(FAMILIES)
    shipped = {"dcgan-rpgan": "dcgan/fashion-mnist-rpgan.yaml",
               "stylegan-lite": "stylegan-lite/fashion-mnist.yaml",
               "r3gan-lite": "r3gan-lite/fashion-mnist.yaml"}
    assert [v.name for v in suite.variants] == list(shipped)
    assert (suite.eval.num_fake, suite.eval.num_real, suite.eval.reference) == (10000, 10000, "test")
    runs = bench.plan_runs(suite, tmp_path / "out")
    assert len(runs) == 3
    for run in runs:
        assert run.recipe.trainer["max_time"] == "00:00:30:00", run.variant.name
        assert run.recipe.train.steps == UNLIMITED_STEPS
        ours = flat(run.recipe.to_dict())
        theirs = flat(load_recipe(REPO / "recipes" / shipped[run.variant.name]).to_dict())
        differing = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
        assert differing <= {"name", "seed", "train.steps", "trainer.max_time",
                             "metrics.fid_every", "metrics.fid_num_fake", "metrics.fid_num_real",
                             "metrics.fid_reference_split", "metrics.fid_batch_size"}, \
            run.variant.name
    out = tmp_path / "dry"
    assert main(["bench", str(FAMILIES), "--dry-run", "--out", str(out)]) == 0
    assert "3 variants x 1 seeds = 3 runs, budget 30 minutes" in capsys.readouterr().out
    assert not out.exists()


def write_suite(tmp_path, **keys):
    suite = {"name": "t", "base": str(DCGAN), "variants": {"a": {}, "b": ["loss.name=hinge"]},
             "seeds": [0], "budget": {"steps": 5}, **keys}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.mark.parametrize("keys, args, expected", [
    ({"budgett": {"steps": 5}}, [], "unknown key 'budgett' in the suite; allowed: name"),
    ({"budget": {"steps": 5, "minutes": 3}}, [], "exactly one of steps, kimg, minutes"),
    ({"budget": {}}, [], "exactly one of steps, kimg, minutes (e.g. budget: {kimg: 1200}); got none"),
    ({"eval": {"track_num_fake": 1}}, [], "key 'eval.track_num_fake' must be an integer of at least 2"),
    ({"extends": "nope.yaml"}, [], "key 'extends': "),
    ({}, ["--only", "c"], "--only c: no such variant"),
    ({"base": "missing.yaml"}, [], "key 'base': recipe"),
    ({"variants": {"a": {"train": {"stepz": 3}}}}, [], "unknown key 'train.stepz'"),
    ({"variants": {"a": ["optim.generator.lrr=0.1"]}}, [], "unknown key 'optim.generator.lrr'"),
    ({"variants": {"a": {"train": {"steps": 3}}}}, [], "sets train.steps, which the suite's "
                                                      "budget sets"),
    ({"variants": {"a": {"los": {"name": "hinge"}}}}, [], "unknown key 'los'; allowed: recipe"),
    ({"eval": {"reference": "val"}}, [], "key 'eval.reference' must be train or test"),
    ({"seeds": []}, [], "key 'seeds' must be a non-empty list"),
    ({"variants": {"a/b": {}}}, [], "variant 'a/b' names a folder"),
    ({"variants": {"a": {"model": {"generator": {"name": "nope"}}}}}, [], "model.generator.name"),
])
def test_bad_suites_fail_in_one_line_before_writing(tmp_path, capsys, keys, args, expected):
    out = tmp_path / "out"
    assert main(["bench", str(write_suite(tmp_path, **keys)), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gans bench: error: ") and "\n" not in err
    assert expected in err
    assert not out.exists()


def test_missing_suite_file(tmp_path, capsys):
    assert main(["bench", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "out")]) == 2
    assert "suite file not found" in capsys.readouterr().err


def test_budgets_and_eval_every_become_recipe_keys(tmp_path):
    path = write_suite(tmp_path, budget={"kimg": 6.4}, eval={"every": {"kimg": 1.28},
                                                             "num_fake": 64, "num_real": 32},
                       variants={"ns": {}, "wgan": {"train": {"n_critic": 5},
                                                    "loss": {"name": "wgan-gp"},
                                                    "model": {"discriminator": {"norm": "none"}}}})
    runs = bench.plan_runs(bench.load_suite(path), tmp_path / "out")
    ns, wgan = (r.recipe for r in runs)
    assert (ns.train.steps, wgan.train.steps) == (100, 20)  # 6,400 real images at batch 64
    assert (ns.metrics.fid_every, wgan.metrics.fid_every) == (20, 4)
    assert (ns.metrics.fid_num_fake, ns.metrics.fid_num_real) == (64, 32)
    assert ns.metrics.fid_reference_split == "test" and ns.name == "seed0" and ns.seed == 0
    assert runs[0].folder == tmp_path / "out" / "t" / "ns" / "seed0"

    timed = bench.plan_runs(bench.load_suite(write_suite(tmp_path, budget={"minutes": 90.5})),
                            tmp_path / "out")[0].recipe
    assert timed.trainer["max_time"] == "00:01:30:30"
    assert timed.train.steps == UNLIMITED_STEPS


def test_eval_every_in_kimg_is_the_nearest_step_count(tmp_path):
    # 0.09 kimg at 64 images a step is 1.4 steps: FID every step, where the budget takes 2.
    path = write_suite(tmp_path, budget={"kimg": 0.09}, eval={"every": {"kimg": 0.09}})
    recipe = bench.plan_runs(bench.load_suite(path), tmp_path / "out")[0].recipe
    assert (recipe.train.steps, recipe.metrics.fid_every) == (2, 1)


def test_track_num_fake_sets_the_tracked_fid_only(tmp_path):
    path = write_suite(tmp_path, eval={"every": 10, "num_fake": 2000, "track_num_fake": 500})
    suite = bench.load_suite(path)
    assert bench.plan_runs(suite, tmp_path / "out")[0].recipe.metrics.fid_num_fake == 500
    assert suite.eval.num_fake == 2000  # best and last are evaluated with this
    assert "every 10 generator steps from 500 generated images" in suite.describe_eval()


def test_a_suite_extends_another_with_paths_rebased(tmp_path, capsys):
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "base.yaml").write_text(yaml.safe_dump({"base": "../recipes/quick.yaml"}))
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "quick.yaml").write_text(DCGAN.read_text())
    parent = studies / "full.yaml"
    parent.write_text(yaml.safe_dump({
        "name": "full", "extends": "base.yaml", "seeds": [0, 1, 2], "budget": {"kimg": 1200},
        "variants": {"ns": {"reference_fid": 26.5},
                     "other": {"recipe": "../recipes/quick.yaml", "loss": {"name": "hinge"}}}}))
    child = tmp_path / "cheap.yaml"  # another folder: the parent's paths must follow it
    child.write_text(yaml.safe_dump({"extends": "studies/full.yaml", "seeds": [5],
                                     "budget": {"steps": 7},
                                     "variants": {"other": {"optim": {"generator": {"lr": 0.01}}}}}))
    suite = bench.load_suite(child)
    assert suite.name == "cheap" and suite.seeds == [5] and suite.budget == ("steps", 7)
    ns, other = suite.variants
    assert ns.reference_fid == [26.5]
    assert Path(other.source).resolve() == (tmp_path / "recipes" / "quick.yaml").resolve()
    assert other.raw["loss"]["name"] == "hinge" and other.raw["optim"]["generator"]["lr"] == 0.01
    assert [r.recipe.train.steps for r in bench.plan_runs(suite, tmp_path / "out")] == [7, 7]

    (studies / "base.yaml").write_text(yaml.safe_dump({"extends": "../cheap.yaml"}))
    assert main(["bench", str(child), "--dry-run"]) == 2
    assert "suites extend each other" in capsys.readouterr().err

    (studies / "base.yaml").write_text("common: &loop\n  again: *loop\n")
    assert main(["bench", str(child), "--dry-run"]) == 2
    assert "anchor (&name) is used inside its own value" in capsys.readouterr().err


def test_grid_makes_one_variant_per_point(tmp_path):
    path = write_suite(tmp_path, variants={"dc": {}},
                       grid={"optim.generator.lr": [0.0001, 0.0002], "train.n_critic": [1, 2]})
    runs = bench.plan_runs(bench.load_suite(path), tmp_path / "out")
    assert [r.variant.name for r in runs] == [
        "dc,optim.generator.lr=0.0001,train.n_critic=1",
        "dc,optim.generator.lr=0.0001,train.n_critic=2",
        "dc,optim.generator.lr=0.0002,train.n_critic=1",
        "dc,optim.generator.lr=0.0002,train.n_critic=2"]
    assert runs[3].recipe.optim.generator.lr == 0.0002 and runs[3].recipe.train.n_critic == 2


def fake_result(variant, seed, fid, curve):
    return {"variant": variant, "seed": seed, "status": "finished",
            "best": {"fid": fid, "kid": fid / 1000}, "final": {"fid": fid + 1, "kid": fid / 900},
            "fid_curve": curve, "generator_steps": 100, "kimg": 6.4, "train_seconds": 600,
            "eval_seconds": 60, "images_per_sec": 100.0, "peak_memory_mib": 900.0,
            "peak_gpu_memory_mib": None, "device": "cpu", "device_hours": 660 / 3600,
            "energy_kwh": 0.002, "energy_method": "estimate: test"}


def test_tables_show_mean_std_reference_and_reached_counts(tmp_path):
    path = write_suite(tmp_path, seeds=[0, 1, 2], thresholds=[50, 30],
                       reference_fid_source="a paper",
                       variants={"a": {"reference_fid": [26.5, 1.6]}, "b": {}})
    suite = bench.load_suite(path)
    results = [fake_result("a", s, fid, [[10, 0.64, 60.0, 60.0], [20, 1.28, 120.0, fid]])
               for s, fid in zip((0, 1, 2), (40.0, 44.0, 20.0))]
    results.append(fake_result("b", 0, 70.0, []))
    summary = report.summarize(suite, results)
    assert summary["a"]["best_fid"]["mean"] == pytest.approx(104 / 3)
    assert summary["a"]["best_fid"]["std"] == pytest.approx(12.858, abs=1e-3)
    assert summary["a"]["kimg_to_fid_30"] == {"mean": 1.28, "std": None, "n": 1}
    table = report.markdown(suite, results, summary)
    row_a = next(line for line in table.splitlines() if line.startswith("| a |"))
    assert "| 34.67 ± 12.86 |" in row_a and "| 26.5 ± 1.6 |" in row_a
    assert "| 1.3 (1/3) |" in row_a and "| 2.0 (1/3) |" in row_a  # FID ≤ 30 in one of three
    row_b = next(line for line in table.splitlines() if line.startswith("| b |"))
    assert "| 70.00 |" in row_b and "± " not in row_b
    assert "Not run yet: b seed 1, b seed 2." in table and "- paper FID: a paper" in table
    png = report.plot(suite, results, "kimg")
    assert png[:4] == b"\x89PNG"


def test_energy_estimate_says_how_it_was_made():
    watts, method = measure.power_estimate(
        {"kind": "cpu", "cpu": "AMD EPYC 9554", "threads": 2}, None)
    assert watts == pytest.approx(11.2) and method.startswith("estimate: 2 CPU threads x 5.6 W")
    watts, method = measure.power_estimate({"kind": "cpu", "cpu": "Some CPU", "threads": 4}, 35.0)
    assert watts == 35.0 and "given" in method
