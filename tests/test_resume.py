"""Resume continues a run where it stopped; Ctrl-C and SIGTERM save before leaving."""

import os
import signal
import subprocess
import sys
import time

import torch
import yaml

from conftest import assert_resuming_is_one_run, straight_and_killed_then_resumed, tiny_recipe
from gans.cli import main


def events(run_dir, tag):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    mux = EventMultiplexer().AddRunsFromDirectory(str(run_dir))
    mux.Reload()
    return sorted(e.step for run in mux.Runs() if tag in mux.Runs()[run]["scalars"]
                  for e in mux.Scalars(run, tag))


def test_resume_continues_step_optimizers_ema_and_curves(tmp_path, image_folder, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(tmp_path, image_folder, steps=4)))
    out = tmp_path / "runs"
    assert main(["train", str(recipe), "--out", str(out)]) == 0
    run_dir = out / "tiny" / "version_0"
    first = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)

    assert main(["train", "--resume", str(run_dir), "--set", "train.steps=7"]) == 0
    assert capsys.readouterr().out.strip().endswith(str(run_dir))
    assert sorted(p.name for p in (out / "tiny").iterdir()) == ["version_0"]  # no new run
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 14
    assert last["state_dict"]["g_ema.n_averaged"].item() == 7  # EMA went on, not restarted
    adam_steps = [s["step"].item() for s in last["optimizer_states"][0]["state"].values()]
    assert set(adam_steps) == {7.0}  # Adam's moments came back from the checkpoint
    assert not torch.equal(first["state_dict"]["generator.net.0.weight"],
                           last["state_dict"]["generator.net.0.weight"])
    assert yaml.safe_load((run_dir / "recipe.yaml").read_text())["train"]["steps"] == 7
    assert events(run_dir, "loss/generator") == list(range(1, 8))


def test_resume_argument_errors(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "pass a run directory" in capsys.readouterr().err
    assert main(["train", "recipes/quickstart.yaml", "--resume", str(tmp_path)]) == 2
    assert "drop RECIPE" in capsys.readouterr().err


def test_sigterm_saves_a_checkpoint_that_resumes(tmp_path, image_folder):
    raw = tiny_recipe(tmp_path, image_folder, steps=100000, checkpoint_every=100000,
                      sample_every=100000)
    recipe = tmp_path / "long.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    out = tmp_path / "runs"
    run_dir = out / "tiny" / "version_0"
    process = subprocess.Popen([sys.executable, "-m", "gans", "train", str(recipe), "--out",
                                str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 120
    while not list(run_dir.glob("events.out.tfevents.*")) and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # some steps into training
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "interrupted at generator step" in err and "--resume" in err
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    steps = saved["global_step"] // 2
    assert steps > 0
    assert main(["train", "--resume", str(run_dir), "--set", f"train.steps={steps + 2}"]) == 0
    resumed = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == 2 * (steps + 2)


def stylegan_with_every_random_part(tmp_path, image_folder, steps):
    raw = tiny_recipe(tmp_path, image_folder, steps=steps, checkpoint_every=4, sample_every=3)
    small = {"channel_base": 64, "channel_max": 8}
    raw["model"] = {"generator": {"name": "stylegan-lite", "latent_dim": 8, "w_dim": 8, **small},
                    "discriminator": {"name": "stylegan-lite", **small}}
    raw["loss"] = {"r1_gamma": 1.0, "r1_every": 2, "pl_weight": 1.0, "pl_every": 2}
    raw["augment"] = {"policy": ["color", "translation", "cutout"], "ada_target": 0.6,
                      "ada_interval": 3, "ada_kimg": 0.05}
    return raw


def test_killed_and_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, image_folder):
    """40 images in batches of 8: 5 batches an epoch, so the kill at step 6 (checkpoint at 4)
    resumes mid-epoch, and the run crosses epochs; noise inputs, style mixing, augmentation,
    ADA, lazy R1 and path length all draw random numbers."""
    raw = stylegan_with_every_random_part(tmp_path, image_folder, steps=9)
    straight, saved_step, resumed = straight_and_killed_then_resumed(tmp_path, raw, kill_at=6)
    assert saved_step == 2 * 4

    assert resumed["global_step"] == straight["global_step"] == 2 * 9
    assert resumed["state_dict"].keys() == straight["state_dict"].keys()
    differ = [k for k, v in straight["state_dict"].items()
              if not torch.equal(v, resumed["state_dict"][k])]
    assert not differ, differ  # G, D, EMA, w average, path-length mean, augmentation p
    for mine, theirs in zip(resumed["optimizer_states"], straight["optimizer_states"]):
        for key, state in theirs["state"].items():
            assert all(torch.equal(state[n], mine["state"][key][n]) for n in state)


def test_extending_a_finished_run_is_bit_identical_to_training_longer(tmp_path, image_folder):
    """A finished run's last checkpoint is written after `fit` stopped part way through an
    epoch (2 of 5 batches), which Lightning already counts as a finished epoch; extended with
    --resume, the data must still go on in the order of the longer run."""
    raw = tiny_recipe(tmp_path, image_folder, steps=4, checkpoint_every=100)
    assert_resuming_is_one_run(tmp_path, raw, stop_at=2)


def test_the_data_order_follows_from_the_batches_trained_alone():
    """Wherever Lightning cuts epochs or restarts an iterator, the next batch is the one after
    the batches already trained; an iterator gives one epoch's worth of batches, then ends."""
    from gans.training.datamodule import ResumableSampler

    trained = [0]
    sampler = ResumableSampler(18, 4, num_replicas=1, rank=0, seed=5,
                               batches_done=lambda: trained[0])  # 4 batches a pass, 2 dropped
    stream = []
    for _ in range(3):
        stream += list(sampler)
        trained[0] += 4
    assert len(stream) == 3 * 16 and all(len(set(stream[i:i + 16])) == 16 for i in (0, 16, 32))
    assert stream[:16] != stream[16:32]  # each pass shuffles anew
    for start in range(9):
        trained[0] = start
        assert list(sampler) == stream[4 * start:4 * (start + 4)]
