"""Speed options: train.compile, train.channels_last, optim.implementation and Inception in bf16.

They change how fast the same computation runs, never what a checkpoint holds or how a
figure is labelled: each trains from the command line, and its checkpoint samples as usual.
"""

import json

import pytest
import torch
import yaml

from conftest import tiny_recipe
from gans.cli import main
from gans.data import Images
from gans.errors import GansError
from gans.evaluation.inception import at_precision, make_extractor, resolve_inception_weights
from gans.evaluation.fid import Protocol, extract_features, real_key
from gans.recipe import DataSection, validate


def train_cli(tmp_path, image_folder, *overrides, **train):
    raw = tiny_recipe(tmp_path, image_folder, steps=2, **train)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "runs"
    sets = [arg for item in overrides for arg in ("--set", item)]
    assert main(["train", str(path), "--out", str(out), *sets]) == 0
    (run_dir,) = (out / "tiny").iterdir()
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4  # two generator steps
    return run_dir, ckpt


def keys_of_plain_run(tmp_path, image_folder):
    (tmp_path / "plain").mkdir()
    _, ckpt = train_cli(tmp_path / "plain", image_folder)
    return set(ckpt["state_dict"])


@pytest.mark.parametrize("overrides", [
    ["train.channels_last=true"],
    ["optim.implementation=fused"],
    ["optim.implementation=for-loop"],
    ["train.channels_last=true", "trainer.precision=bf16-mixed", "optim.implementation=fused"],
])
def test_speed_option_trains_two_steps(tmp_path, image_folder, overrides):
    run_dir, ckpt = train_cli(tmp_path, image_folder, *overrides)
    for tensor in ckpt["state_dict"].values():
        assert torch.isfinite(tensor.float()).all()
    assert main(["sample", str(run_dir / "checkpoints" / "last.ckpt"), "--num", "2",
                 "--out", str(tmp_path / "s.png")]) == 0


def test_compiled_run_keeps_checkpoint_keys_and_samples(tmp_path, image_folder):
    # Lazy R1 every 2nd D step: the R1 pass runs eagerly (no double backward when compiled).
    from torch._dynamo.utils import counters

    counters.clear()
    run_dir, ckpt = train_cli(tmp_path, image_folder, "train.compile=true",
                              "loss.r1_gamma=1.0", "loss.r1_every=2")
    assert counters["stats"]["unique_graphs"] >= 2  # G and D really ran compiled
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])
    assert set(ckpt["state_dict"]) == keys_of_plain_run(tmp_path, image_folder)
    out = tmp_path / "samples"
    assert main(["sample", str(run_dir / "checkpoints" / "last.ckpt"), "--num", "3",
                 "--out", f"{out}/"]) == 0
    assert len(list(out.glob("*.png"))) == 3


@pytest.mark.parametrize("key, value, allowed", [
    ("optim.implementation", "turbo", "for-loop or foreach or fused"),
    ("metrics.inception_precision", "fp16", "fp32 or bf16"),
    ("train.compile", "sometimes", "true or false"),
    ("train.channels_last", 1, "true or false"),
    ("metrics.inception_compile", "yes please", "true or false"),
])
def test_bad_speed_option_is_one_line_naming_key_and_values(key, value, allowed):
    section, name = key.split(".")
    with pytest.raises(GansError) as err:
        validate({section: {name: value}})
    message = str(err.value)
    assert "\n" not in message and f"'{key}'" in message and allowed in message


@pytest.fixture(scope="module")
def extractor():
    return make_extractor(resolve_inception_weights())


def test_bf16_features_are_close_to_fp32(extractor):
    g = torch.Generator().manual_seed(0)
    low = torch.rand(6, 3, 4, 4, generator=g)
    images = (torch.nn.functional.interpolate(low, size=32, mode="bilinear") * 2 - 1)
    fp32 = extract_features(extractor, images, batch_size=3)
    bf16 = extract_features(at_precision(extractor, "bf16"), images, batch_size=3)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape == (6, 2048)
    cosine = torch.nn.functional.cosine_similarity(fp32, bf16, dim=1)
    assert cosine.min() > 0.99
    assert not torch.equal(fp32, bf16)  # bf16 really ran
    assert at_precision(extractor, "fp32") is extractor
    with pytest.raises(GansError, match="fp32 or bf16"):
        at_precision(extractor, "fp16")


def test_precision_is_in_the_protocol_and_the_cache_key():
    weights = resolve_inception_weights()
    pixels = torch.zeros(4, 1, 16, 16, dtype=torch.uint8)
    data = DataSection(name="folder", resolution=16)
    images = Images(pixels, None, "zeros")
    assert real_key(data, "train", images, weights, 4) == \
        real_key(data, "train", images, weights, 4, "fp32")
    assert real_key(data, "train", images, weights, 4, "bf16") != \
        real_key(data, "train", images, weights, 4, "fp32")
    base = dict(extractor="FID x", weights_sha256="0" * 64, num_fake=2, num_real=4,
                reference="zeros", resolution=16)
    assert "fp32" in Protocol(**base).describe()
    assert "bf16" in Protocol(**base, precision="bf16").describe()


def test_eval_precision_flag_reaches_the_figures(trained_run, tmp_path, capsys):
    ckpt = str(trained_run / "checkpoints" / "last.ckpt")
    out = tmp_path / "figures.json"
    assert main(["eval", ckpt, "--metrics", "fid", "--num-fake", "6", "--num-real", "6",
                 "--batch-size", "6", "--precision", "bf16", "--json", str(out)]) == 0
    assert "Inception bf16" in capsys.readouterr().out
    assert json.loads(out.read_text())["fid"]["precision"] == "bf16"
    assert main(["eval", ckpt, "--metrics", "fid", "--precision", "fp16"]) == 2
    assert "fp32 or bf16" in capsys.readouterr().err


@pytest.mark.parametrize("flags, expected", [({"avx512f", "avx512_bf16"}, "bf16-mixed"),
                                             ({"avx512f", "avx2"}, "32-true")])
def test_precision_auto_trains_at_what_the_cpu_runs_fast_and_records_it(
        tmp_path, image_folder, monkeypatch, flags, expected):
    from gans import hardware

    monkeypatch.setattr(hardware, "cpu_flags", lambda: flags)
    run_dir, ckpt = train_cli(tmp_path, image_folder, "trainer.precision=auto")
    assert yaml.safe_load((run_dir / "recipe.yaml").read_text())["trainer"]["precision"] == \
        expected
    for tensor in ckpt["state_dict"].values():
        assert torch.isfinite(tensor.float()).all()


def test_explicit_precision_is_kept_whatever_the_cpu():
    from gans.hardware import resolve_precision

    assert resolve_precision({"precision": "32-true"}) == "32-true"
    assert resolve_precision({"precision": "bf16-mixed", "accelerator": "cpu"}) == "bf16-mixed"
    assert resolve_precision({}) == "32-true"


def test_compiled_extractor_pads_a_short_batch_into_one_graph():
    from torch._dynamo.utils import counters

    from gans.evaluation.inception import compiled
    from gans.evaluation.fid import extract_features

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    torch._dynamo.reset()
    counters.clear()

    class Extractor(torch.nn.Module):  # takes uint8 like Inception
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.float() / 255)

    plain = extract_features(Extractor().eval(), images, batch_size=4)
    fast = extract_features(compiled(Extractor().eval()), images, batch_size=4)  # 4 + 4 + 2
    assert counters["stats"]["unique_graphs"] == 1
    assert fast.shape == plain.shape == (10, 4)
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)


def test_inception_compile_reaches_fid_tracking_and_eval(tmp_path, image_folder, trained_run,
                                                          monkeypatch):
    # The compilation itself is checked above on a small network; here, that the switches reach
    # the extractor that training and `gans eval` use (compiling real Inception takes a minute).
    compiled_for = []

    def spy(extractor):
        compiled_for.append(extractor)
        return extractor

    monkeypatch.setattr("gans.evaluation.inception.compiled", spy)  # behind every extractor
    train_cli(tmp_path, image_folder, "metrics.fid_every=1", "metrics.fid_num_fake=10",
              "metrics.fid_num_real=20", "metrics.fid_batch_size=10")
    assert compiled_for == []
    (tmp_path / "compiled").mkdir()
    train_cli(tmp_path / "compiled", image_folder, "metrics.fid_every=1",
              "metrics.fid_num_fake=10", "metrics.fid_num_real=20", "metrics.fid_batch_size=10",
              "metrics.inception_compile=true")
    assert len(compiled_for) == 1
    ckpt = str(trained_run / "checkpoints" / "last.ckpt")
    args = ["eval", ckpt, "--metrics", "fid", "--num-fake", "6", "--num-real", "6"]
    assert main(args) == 0 and len(compiled_for) == 1
    assert main(args + ["--compile"]) == 0 and len(compiled_for) == 2
