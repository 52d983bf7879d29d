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


def with_foreign_generator(trained_run, tmp_path, module_name):
    """A copy of a trained run whose recipe names a generator by dotted path in a module that
    records its own import; weights-only loading reads this file without complaint."""
    marker = tmp_path / "imported.txt"
    (tmp_path / f"{module_name}.py").write_text(
        f"open({str(marker)!r}, 'w').write('code ran')\n"
        "from gans.models.dcgan import DCGANGenerator as Generator\n")
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt["hyper_parameters"]["recipe"]["model"]["generator"]["name"] = f"{module_name}.Generator"
    torch.save(ckpt, run / "checkpoints" / "last.ckpt")
    return run, marker


@pytest.mark.parametrize("command", ["sample", "eval", "card", "export", "train"])
def test_a_recipe_naming_code_outside_gans_is_refused_without_trust(
        trained_run, tmp_path, capsys, monkeypatch, command):
    module_name = f"foreign_{command}"
    run, marker = with_foreign_generator(trained_run, tmp_path, module_name)
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = str(run / "checkpoints" / "last.ckpt")
    args = {"sample": ["sample", ckpt, "--num", "4", "--out", str(tmp_path / "g.png")],
            "eval": ["eval", ckpt, "--num-fake", "4", "--device", "cpu"],
            "card": ["card", ckpt],
            "export": ["export", ckpt, "--out", str(tmp_path / "g.safetensors")],
            "train": ["train", "--resume", str(run), "--set", "train.steps=21"]}[command]
    assert main(args) == 2
    err = one_line_error(capsys.readouterr().err, command)
    assert f"{module_name}.Generator" in err and "--trust-checkpoint" in err
    assert not marker.exists(), "the module named by the recipe was imported"
    assert module_name not in sys.modules


def test_an_exported_file_naming_code_outside_gans_is_refused(trained_run, tmp_path, capsys,
                                                             monkeypatch):
    from safetensors.torch import load, save

    from gans.sampling.checkpoint import read_exported

    exported = tmp_path / "g.safetensors"
    assert main(["export", str(trained_run / "checkpoints" / "last.ckpt"),
                 "--out", str(exported)]) == 0
    state, metadata = read_exported(exported)
    recipe = __import__("json").loads(metadata["recipe"])
    recipe["model"]["generator"]["name"] = "foreign_exported.Generator"
    metadata["recipe"] = __import__("json").dumps(recipe)
    exported.write_bytes(save(load(exported.read_bytes()), metadata=metadata))
    run, marker = with_foreign_generator(trained_run, tmp_path, "foreign_exported")
    monkeypatch.syspath_prepend(str(tmp_path))
    capsys.readouterr()
    assert main(["sample", str(exported), "--num", "4", "--out", str(tmp_path / "g.png")]) == 2
    err = one_line_error(capsys.readouterr().err, "sample")
    assert "foreign_exported.Generator" in err and "--trust-checkpoint" in err
    assert not marker.exists()
