"""FID during training: the real-statistics cache and the tracker, with the real extractor."""

import pytest
import torch
import yaml

from conftest import tiny_recipe
from gans.cli import main
from gans.data import Images
from gans.inception import make_fid, resolve_inception_weights
from gans.metrics import load_real_statistics


@pytest.fixture(scope="module")
def weights():
    return resolve_inception_weights()


def images(seed, n=12):
    pixels = torch.randint(0, 256, (n, 1, 16, 16), generator=torch.Generator().manual_seed(seed),
                           dtype=torch.uint8)
    return Images(pixels, None, "random")


def key_for(imgs, weights, n):
    return {"fingerprint": imgs.fingerprint(), "weights_sha256": weights.sha256, "num_real": n}


def test_real_statistics_are_cached_and_keyed_by_content(weights, monkeypatch):
    first = make_fid(weights)
    data = images(0)
    entry = load_real_statistics(first, data, key_for(data, weights, 12), batch_size=6)
    assert entry.exists()
    assert first.real_features_num_samples.item() == 12

    second = make_fid(weights)
    monkeypatch.setattr(second, "update", lambda *a, **k: pytest.fail("cache not used"))
    assert load_real_statistics(second, data, key_for(data, weights, 12), 6) == entry
    assert torch.equal(first.real_features_sum, second.real_features_sum)

    other = images(1)
    third = make_fid(weights)
    assert load_real_statistics(third, other, key_for(other, weights, 12), 6) != entry
    assert not torch.equal(third.real_features_sum, first.real_features_sum)


def test_unreadable_cache_entry_is_recomputed_with_a_warning(weights):
    data = images(2)
    key = key_for(data, weights, 12)
    entry = load_real_statistics(make_fid(weights), data, key, 6)
    entry.write_bytes(b"truncated")
    fid = make_fid(weights)
    with pytest.warns(UserWarning, match="unreadable"):
        assert load_real_statistics(fid, data, key, 6) == entry
    assert fid.real_features_num_samples.item() == 12


def test_training_tracks_fid_and_keeps_the_best_checkpoint(tmp_path, image_folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    raw = tiny_recipe(tmp_path, image_folder, steps=4)
    raw["metrics"] = {"fid_every": 2, "fid_num_fake": 10, "fid_num_real": 20,
                      "fid_batch_size": 10}
    recipe = tmp_path / "fid.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["train", str(recipe), "--out", str(tmp_path / "runs")]) == 0
    run = tmp_path / "runs" / "tiny" / "version_0"
    assert (run / "checkpoints" / "best.ckpt").is_file()
    events = EventAccumulator(str(run))
    events.Reload()
    fids = [e.value for e in events.Scalars("fid")]
    assert len(fids) == 2 and all(f > 0 for f in fids)
    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["global_step"] == 4 * fids.index(min(fids)) + 4
    assert "fid/protocol/text_summary" in events.Tags()["tensors"]
