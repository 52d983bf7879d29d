"""Checkpoints that need a full unpickle are refused unless --trust-checkpoint says otherwise."""

import argparse
import shutil
import sys
import types

import pytest
import torch

from gans.cli import main


class Annotation:
    """Stands for any object a checkpoint can carry that only a full unpickle rebuilds."""

    def __init__(self, note):
        self.note = note


def untrusted_copy(trained_run, target, extra):
    ckpt = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt["extra"] = extra
    torch.save(ckpt, target)
    return target


def one_line_error(err: str, command: str) -> str:
    assert err.count("\n") == 1 and err.startswith(f"gans {command}: error: "), err
    assert "Traceback" not in err
    return err


def test_sample_refuses_then_trusts(trained_run, tmp_path, capsys):
    ckpt = untrusted_copy(trained_run, tmp_path / "untrusted.ckpt", Annotation("hello"))
    grid = tmp_path / "grid.png"

    assert main(["sample", str(ckpt), "--num", "4", "--out", str(grid)]) == 2
    err = one_line_error(capsys.readouterr().err, "sample")
    assert "--trust-checkpoint" in err and "arbitrary code" in err
    assert f"{__name__}.Annotation" in err  # names what needs the full unpickle
    assert not grid.exists()

    assert main(["sample", str(ckpt), "--num", "4", "--out", str(grid),
                 "--trust-checkpoint"]) == 0
    assert grid.is_file() and grid.stat().st_size > 0


def test_eval_refuses_before_any_work(trained_run, tmp_path, capsys):
    ckpt = untrusted_copy(trained_run, tmp_path / "untrusted.ckpt", argparse.Namespace(a=1))
    assert main(["eval", str(ckpt), "--num-fake", "4", "--device", "cpu"]) == 2
    err = one_line_error(capsys.readouterr().err, "eval")
    assert "argparse.Namespace" in err and "--trust-checkpoint" in err


def test_trusted_file_whose_code_is_gone_is_one_line(trained_run, tmp_path, capsys):
    module = types.ModuleType("vanished_plugin")

    class Gone:
        pass

    Gone.__module__, Gone.__qualname__ = "vanished_plugin", "Gone"
    module.Gone = Gone
    sys.modules["vanished_plugin"] = module
    try:
        ckpt = untrusted_copy(trained_run, tmp_path / "gone.ckpt", Gone())
    finally:
        del sys.modules["vanished_plugin"]
    assert main(["sample", str(ckpt), "--out", str(tmp_path / "g.png"),
                 "--trust-checkpoint"]) == 2
    err = one_line_error(capsys.readouterr().err, "sample")
    assert "could not be unpickled" in err and "vanished_plugin" in err


@pytest.mark.parametrize("content", [b"", b"\x80\x02garbage" * 10])
def test_trust_does_not_turn_garbage_into_a_traceback(tmp_path, capsys, content):
    ckpt = tmp_path / "bad.ckpt"
    ckpt.write_bytes(content)
    assert main(["sample", str(ckpt), "--out", str(tmp_path / "g.png"),
                 "--trust-checkpoint"]) == 2
    one_line_error(capsys.readouterr().err, "sample")


def test_resume_refuses_then_trusts(trained_run, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "tiny" / "version_0"
    shutil.copytree(trained_run, run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    untrusted_copy(trained_run, last, argparse.Namespace(a=1))
    before = last.read_bytes()

    assert main(["train", "--resume", str(run_dir), "--set", "train.steps=22"]) == 2
    err = one_line_error(capsys.readouterr().err, "train")
    assert "--trust-checkpoint" in err
    assert last.read_bytes() == before

    assert main(["train", "--resume", str(run_dir), "--set", "train.steps=22",
                 "--trust-checkpoint"]) == 0
    resumed = torch.load(last, weights_only=True)  # what gans writes needs no trust
    assert resumed["global_step"] == 44 and "extra" not in resumed
