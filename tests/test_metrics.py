"""FID during training: the real-statistics cache and the tracker, with the real extractor."""

import pytest
import torch
import yaml

from conftest import tiny_recipe
from gans.cli import main
from gans.data import Images
from gans.evaluation.inception import make_extractor, resolve_inception_weights
from gans.evaluation.fid import real_features


@pytest.fixture(scope="module")
def extractor():
    return make_extractor(resolve_inception_weights())


def images(seed, n=12):
    pixels = torch.randint(0, 256, (n, 1, 16, 16), generator=torch.Generator().manual_seed(seed),
                           dtype=torch.uint8)
    return Images(pixels, None, "random")


def key_for(imgs, n=12):
    return {"fingerprint": imgs.fingerprint(), "num_real": n}


def test_real_features_are_cached_and_keyed_by_content(extractor, monkeypatch):
    data = images(0)
    first, entry = real_features(data, key_for(data), extractor, batch_size=6)
    assert entry.exists() and first.shape == (12, 2048)

    monkeypatch.setattr("gans.evaluation.fid.extract_features",
                        lambda *a, **k: pytest.fail("cache not used"))
    again, same_entry = real_features(data, key_for(data), extractor, 6)
    assert same_entry == entry and torch.equal(again, first)
    monkeypatch.undo()

    other = images(1)
    third, other_entry = real_features(other, key_for(other), extractor, 6)
    assert other_entry != entry and not torch.equal(third, first)
    fewer, fewer_entry = real_features(data, key_for(data, 5), extractor, 6)
    assert fewer_entry != entry and fewer.shape == (5, 2048)


def test_unreadable_cache_entry_is_recomputed_with_a_warning(extractor):
    data = images(2)
    expected, entry = real_features(data, key_for(data), extractor, 6)
    entry.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="unreadable"):
        features, again = real_features(data, key_for(data), extractor, 6)
    assert again == entry and torch.allclose(features, expected)
    assert torch.load(entry, weights_only=True)["key"] == key_for(data)


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
