"""The shipped Fashion-MNIST classifier and the class-coverage figures built on it."""

import math
import os

import pytest
import torch

from gans import data as gdata
from gans.evaluation.classifiers import fashion_mnist
from gans.evaluation.classifiers.fashion_mnist import CLASS_NAMES, load_classifier, weights_sha256
from gans.evaluation.coverage import COVERED_FRACTION, class_coverage, predict_classes
from gans.data import load_images
from gans.errors import GansError
from gans.recipe import DataSection

HAVE_DEBIAN_FMNIST = (gdata.DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").exists()
needs_fmnist = pytest.mark.skipif(not HAVE_DEBIAN_FMNIST and not os.environ.get("CI"),
                                  reason="apt-get install dataset-fashion-mnist")
NUM_TEST = 1000


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def first_test_images(resolution, tmp_path_factory=None):
    """The first NUM_TEST test images as a GAN at `resolution` trains on them (uint8)."""
    return load_images(DataSection(name="fashion-mnist", split="test", resolution=resolution,
                                   channels=1, limit=NUM_TEST))


@pytest.fixture(scope="module")
def test_set_28(tmp_path_factory):
    return first_test_images(28, tmp_path_factory)


def accuracy(classifier, pixels, labels):
    images = pixels.float() / 127.5 - 1  # generator output range
    return (predict_classes(classifier, images, batch_size=250) == labels).float().mean().item()


@needs_fmnist
def test_classifier_accuracy_at_28px(classifier, test_set_28):
    assert accuracy(classifier, test_set_28.pixels, test_set_28.labels) >= 0.90


@needs_fmnist
@pytest.mark.parametrize("resolution, minimum", [(32, 0.88), (64, 0.88)])
def test_classifier_accuracy_along_the_generator_resize_path(classifier, resolution, minimum,
                                                             tmp_path_factory):
    test_set = first_test_images(resolution, tmp_path_factory)
    assert test_set.pixels.shape[-1] == resolution
    assert accuracy(classifier, test_set.pixels, test_set.labels) >= minimum


@pytest.fixture(scope="module")
def test_set_32(tmp_path_factory):
    return first_test_images(32, tmp_path_factory)


@needs_fmnist
def test_coverage_of_real_images_through_the_classifier(classifier, test_set_32):
    """Real 32x32 test images stand in for a perfect generator, and one class of them for a
    collapsed one: the classifier's mistakes must not make the collapse look like coverage."""
    predicted = predict_classes(classifier, test_set_32.pixels.float() / 127.5 - 1)
    labels = test_set_32.labels
    perfect = class_coverage(predicted, labels, 10, CLASS_NAMES)
    assert perfect["classes_covered"] == 10 and perfect["kl_real_generated"] < 0.05
    for name in ("Trouser", "Bag", "Sneaker"):
        collapsed = class_coverage(predicted[labels == CLASS_NAMES.index(name)], labels, 10,
                                   CLASS_NAMES)
        assert collapsed["classes_covered"] == 1 and collapsed["kl_real_generated"] > 3
        assert collapsed["generated_share"][name] > 0.9


@needs_fmnist
def test_classifier_takes_rgb_and_uint8_alike(classifier, test_set_28):
    pixels = test_set_28.pixels[:64]
    grey = predict_classes(classifier, pixels.float() / 127.5 - 1)
    assert torch.equal(predict_classes(classifier, pixels.expand(-1, 3, -1, -1) / 127.5 - 1), grey)
    assert torch.equal(predict_classes(classifier, pixels), grey)
    batches = [(chunk.float() / 127.5 - 1, None) for chunk in pixels.split(10)]
    assert torch.equal(predict_classes(classifier, iter(batches)), grey)


def test_classifier_rejects_bad_shapes(classifier):
    with pytest.raises(GansError, match=r"\(N, 1 or 3, H, W\)"):
        classifier(torch.zeros(2, 28, 28))
    with pytest.raises(GansError, match="float images"):
        classifier(torch.zeros(2, 1, 28, 28, dtype=torch.int32))


def test_shipped_weights_are_small_and_hashed():
    assert fashion_mnist.WEIGHTS_PATH.stat().st_size < 1_000_000
    digest = weights_sha256()
    assert len(digest) == 64 and digest == weights_sha256(fashion_mnist.WEIGHTS_PATH)


@pytest.mark.parametrize("content", [b"", b"not a torch file", None])
def test_load_classifier_names_a_bad_weights_file_and_the_fix(tmp_path, monkeypatch, content):
    path = tmp_path / "fashion_mnist.pt"
    if content is not None:
        path.write_bytes(content)
    monkeypatch.setattr(fashion_mnist, "WEIGHTS_PATH", path)
    with pytest.raises(GansError) as error:
        load_classifier()
    message = str(error.value)
    assert str(path) in message and "python -m gans.evaluation.classifiers.train" in message
    assert "\n" not in message


def test_load_classifier_rejects_weights_of_another_network(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(GansError, match="do not fit the network"):
        load_classifier(path=path)


# ----------------------------------------------------------------------------- class_coverage


def coverage(predicted, real=None, names=CLASS_NAMES):
    real = torch.arange(10).repeat(100) if real is None else real
    return class_coverage(torch.as_tensor(predicted), torch.as_tensor(real), len(names), names)


def test_uniform_generation_covers_every_class_with_zero_kl():
    result = coverage(torch.arange(10).repeat(37))
    assert result["classes_covered"] == result["num_classes"] == 10
    assert result["not_covered"] == []
    assert result["kl_real_generated"] == pytest.approx(0, abs=1e-9)
    assert list(result["generated_share"]) == CLASS_NAMES
    assert all(share == pytest.approx(0.1) for share in result["generated_share"].values())


def test_collapsed_generation_covers_one_class_with_large_kl():
    result = coverage(torch.full((500,), 7))
    assert result["classes_covered"] == 1
    assert result["not_covered"] == [name for i, name in enumerate(CLASS_NAMES) if i != 7]
    assert result["generated_share"]["Sneaker"] == pytest.approx(1.0)
    # 9 missing classes of share 0.1, each ~0.1 * ln(0.1 / 1e-6); the one present: 0.1 * ln 0.1
    expected = 0.9 * math.log(0.1 / 1e-6) + 0.1 * math.log(0.1)
    assert result["kl_real_generated"] == pytest.approx(expected, rel=1e-3)
    assert result["kl_real_generated"] > 9


def test_shares_sum_to_one_and_match_counts_by_hand():
    predicted = torch.tensor([0, 0, 0, 1, 1, 2, 9, 9, 9, 9])
    result = coverage(predicted)
    assert sum(result["generated_share"].values()) == pytest.approx(1.0)
    assert sum(result["real_share"].values()) == pytest.approx(1.0)
    assert result["generated_share"]["T-shirt/top"] == pytest.approx(0.3)
    assert result["generated_share"]["Ankle boot"] == pytest.approx(0.4)
    assert result["classes_covered"] == 4 and result["num_generated"] == 10
    assert "Dress" in result["not_covered"]


def test_bias_without_collapse_shows_in_kl_not_in_coverage():
    balanced = coverage(torch.arange(10).repeat(10))["kl_real_generated"]
    # every class present, but class 0 at 46% of the samples and each other class at 6%
    biased = coverage(torch.cat([torch.zeros(40, dtype=torch.long), torch.arange(10).repeat(6)]))
    assert biased["classes_covered"] == 10
    assert biased["kl_real_generated"] > balanced + 0.2


def test_covered_threshold_is_relative_to_the_real_share():
    real = torch.cat([torch.zeros(900, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    names = ["common", "rare"]
    # the rare class is 10% of the real data: 5% of the samples is exactly half of that
    assert COVERED_FRACTION == 0.5
    at_threshold = torch.cat([torch.zeros(950, dtype=torch.long), torch.ones(50, dtype=torch.long)])
    assert coverage(at_threshold, real, names)["classes_covered"] == 2
    below = torch.cat([torch.zeros(951, dtype=torch.long), torch.ones(49, dtype=torch.long)])
    assert coverage(below, real, names)["not_covered"] == ["rare"]


def test_classes_absent_from_the_real_data_are_not_counted():
    real = torch.tensor([0, 1, 2] * 10)
    result = coverage(torch.tensor([0, 1, 2, 3]), real)
    assert result["num_classes"] == 3 and result["classes_covered"] == 3
    assert math.isfinite(result["kl_real_generated"])


@pytest.mark.parametrize("predicted, real, names, match", [
    ([], [0, 1], CLASS_NAMES, "no predicted labels"),
    ([0, 10], [0, 1], CLASS_NAMES, "outside 0..9"),
    ([0, -1], [0, 1], CLASS_NAMES, "outside 0..9"),
    ([0.0, 1.0], [0, 1], CLASS_NAMES, "integer predicted labels"),
    ([0, 1], [0, 1], CLASS_NAMES[:3], "one name per class"),
])
def test_class_coverage_rejects_bad_input(predicted, real, names, match):
    with pytest.raises(GansError, match=match):
        class_coverage(torch.tensor(predicted), torch.tensor(real), 10, names)
