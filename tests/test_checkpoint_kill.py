"""SIGKILL in the middle of a checkpoint save: the previous checkpoint survives and resumes."""

import os
import signal
import subprocess
import sys
import textwrap

import torch
import yaml

from conftest import REPO, tiny_recipe
from gans.cli import main
from gans.files import atomic_write, remove_stale_temps


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def stray_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_kill_inside_atomic_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "checkpoints" / "last.ckpt"
    done = run_python(f"""
        import io, os, signal, torch
        from gans.files import atomic_write

        target = {str(target)!r}
        first = {{"step": 1, "weights": torch.arange(1000.0)}}
        atomic_write(target, lambda f: torch.save(first, f))

        def write_half_then_die(f):
            data = io.BytesIO()
            torch.save({{"step": 2, "weights": torch.zeros(1000)}}, data)
            f.write(data.getvalue()[: len(data.getvalue()) // 2])
            f.flush()
            os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

        print(os.getpid(), flush=True)
        atomic_write(target, write_half_then_die)
        print("not reached")
    """)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "not reached" not in done.stdout

    ckpt = torch.load(target, weights_only=True)
    assert ckpt["step"] == 1 and torch.equal(ckpt["weights"], torch.arange(1000.0))

    # The half-written temp file stays (a SIGKILL runs no cleanup), under a name no reader
    # takes for a checkpoint; the next save deletes it, its writer being dead.
    (stray,) = stray_files(target.parent)
    assert stray == f".last.ckpt.tmp-{_host()}-{done.stdout.split()[0]}"
    assert sorted(p.name for p in target.parent.glob("*.ckpt")) == ["last.ckpt"]
    assert [p.name for p in remove_stale_temps(target)] == [stray]
    atomic_write(target, lambda f: torch.save({"step": 3}, f))
    assert stray_files(target.parent) == []
    assert torch.load(target, weights_only=True) == {"step": 3}


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    target = tmp_path / "last.ckpt"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        mine = tmp_path / f".last.ckpt.tmp-{_host()}-{sleeper.pid}"
        other_host = tmp_path / ".last.ckpt.tmp-elsewhere-1"
        mine.write_bytes(b"in progress")
        other_host.write_bytes(b"in progress")
        assert remove_stale_temps(target) == []
        assert mine.exists() and other_host.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert remove_stale_temps(target) == [mine]
    assert other_host.exists()


def _host() -> str:
    from gans import files

    return files._HOST


def test_kill_during_a_training_save_then_resume(tmp_path, image_folder):
    raw = tiny_recipe(tmp_path, image_folder, steps=4, checkpoint_every=2, sample_every=100)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    out = tmp_path / "runs"
    # The save at generator step 2 completes; the one at step 4 dies halfway through its write.
    done = run_python(f"""
        import io, os, signal, sys, torch

        real_save = torch.save
        calls = []

        def save(obj, f, *args, **kwargs):
            calls.append(obj.get("global_step"))
            if len(calls) < 2:
                return real_save(obj, f, *args, **kwargs)
            data = io.BytesIO()
            real_save(obj, data, *args, **kwargs)
            f.write(data.getvalue()[: len(data.getvalue()) // 3])
            f.flush()
            print("killed at global step", obj.get("global_step"), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        torch.save = save
        from gans.cli import main
        sys.exit(main(["train", {str(recipe)!r}, "--out", {str(out)!r}]))
    """, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert "killed at global step 8" in done.stdout
    run_dir = out / "tiny" / "version_0"
    checkpoints = run_dir / "checkpoints"
    previous = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert previous["global_step"] == 4  # generator step 2, whole
    (stray,) = stray_files(checkpoints)

    assert main(["train", "--resume", str(run_dir)]) == 0
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["global_step"] == 8
    assert stray_files(checkpoints) == []  # the resumed run's first save removed the leftover
    assert sorted(p.name for p in (out / "tiny").iterdir()) == ["version_0"]
