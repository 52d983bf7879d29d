
import pytest
import torch

from gans import data as gdata
from gans.data import load_images
from gans.training.datamodule import GANDataModule
from gans.errors import GansError
from gans.recipe import DataSection

HAVE_DEBIAN_FMNIST = (gdata.DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").exists()
needs_fmnist = pytest.mark.skipif(not HAVE_DEBIAN_FMNIST and not __import__("os").environ.get("CI"),
                                  reason="apt-get install dataset-fashion-mnist")


def test_folder_is_read_recursively_and_ignores_other_files(image_folder):
    images = load_images(DataSection(name="folder", root=str(image_folder), resolution=16,
                                     channels=3))
    assert images.pixels.shape == (40, 3, 16, 16)
    assert images.pixels.dtype == torch.uint8


def test_folder_to_grayscale(image_folder):
    images = load_images(DataSection(name="folder", root=str(image_folder), resolution=32,
                                     channels=1, limit=5))
    assert images.pixels.shape == (5, 1, 32, 32)


def test_folder_skips_unreadable_files(image_folder):
    (image_folder / "broken.png").write_bytes(b"not really a png")
    (image_folder / "empty.jpg").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        images = load_images(DataSection(name="folder", root=str(image_folder), resolution=16,
                                         channels=3))
    assert len(images.pixels) == 40


@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: None, "data.root is not set"),
    (lambda tmp: str(tmp / "absent"), "is not a folder"),
    (lambda tmp: (tmp / "empty").mkdir() or str(tmp / "empty"), "holds no readable image"),
])
def test_folder_errors(tmp_path, make, fragment):
    with pytest.raises(GansError, match=fragment):
        load_images(DataSection(name="folder", root=make(tmp_path)))


def test_fingerprint_changes_with_content(image_folder):
    section = DataSection(name="folder", root=str(image_folder), resolution=16, channels=3)
    before = load_images(section).fingerprint()
    assert load_images(section).fingerprint() == before
    next(image_folder.rglob("*.png")).unlink()
    assert load_images(section).fingerprint() != before


@needs_fmnist
def test_fashion_mnist_from_the_debian_package():
    images = load_images(DataSection(name="fashion-mnist", split="test", resolution=32,
                                     channels=1))
    assert images.pixels.shape == (10000, 1, 32, 32)
    assert images.labels.shape == (10000,)
    assert sorted(images.labels.unique().tolist()) == list(range(10))
    assert "Fashion-MNIST test" in images.description


def test_fashion_mnist_missing_everywhere_lists_all_places(tmp_path, monkeypatch):
    from torchvision import datasets

    def offline(*args, **kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(gdata, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setattr(datasets, "FashionMNIST", offline)
    with pytest.raises(GansError) as info:
        load_images(DataSection(name="fashion-mnist", root=str(tmp_path / "mine")))
    message = str(info.value)
    assert str(tmp_path / "mine") in message and str(tmp_path / "debian") in message
    assert "download" in message and "apt-get install dataset-fashion-mnist" in message


def test_fashion_mnist_from_gz_files_in_data_root(tmp_path, monkeypatch):
    """A user's own copy of the four .gz files, as most mirrors ship them."""
    import gzip
    import struct

    root = tmp_path / "fm"
    root.mkdir()
    for split, n in (("train", 3), ("t10k", 2)):
        pixels = bytes([7]) * (n * 28 * 28)
        with gzip.open(root / f"{split}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + pixels)
        with gzip.open(root / f"{split}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, n) + bytes(range(n)))
    monkeypatch.setattr(gdata, "DEBIAN_FASHION_MNIST", tmp_path / "none")
    images = load_images(DataSection(name="fashion-mnist", root=str(root), resolution=32))
    assert images.pixels.shape == (3, 1, 32, 32)
    assert images.labels.tolist() == [0, 1, 2]
    assert (images.pixels == 7).all()


def test_datamodule_batches_uint8(image_folder):
    dm = GANDataModule(DataSection(name="folder", root=str(image_folder), resolution=16,
                                   channels=3), batch_size=16)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 2  # 40 images, incomplete last batch dropped
    assert batches[0][0].shape == (16, 3, 16, 16) and batches[0][0].dtype == torch.uint8


def test_datamodule_refuses_batch_larger_than_data(image_folder):
    dm = GANDataModule(DataSection(name="folder", root=str(image_folder), resolution=16,
                                   channels=3), batch_size=64)
    with pytest.raises(GansError, match="fewer than train.batch_size=64"):
        dm.setup("fit")


def test_as_signed_maps_pixels_to_the_networks_range():
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8)
    signed = gdata.as_signed(pixels)
    assert signed.dtype == torch.float32
    assert torch.allclose(signed, torch.tensor([-1.0, 51 / 127.5 - 1, 1.0]))
    # The training step asks for its autocast dtype: the ends stay exact in bfloat16.
    half = gdata.as_signed(pixels, torch.bfloat16)
    assert half.dtype == torch.bfloat16 and half[0] == -1 and half[-1] == 1


def test_as_unit_and_as_uint8_invert_as_signed():
    pixels = torch.arange(256, dtype=torch.uint8)
    signed = gdata.as_signed(pixels)
    assert torch.equal(gdata.as_uint8(signed), pixels)  # every level comes back exactly
    assert torch.allclose(gdata.as_unit(signed), pixels.float() / 255)
    # Generator output between two levels rounds to the nearer; out of range clamps.
    between = torch.tensor([-1.5, 1.3 / 127.5 - 1, 1.2])  # level 1.3
    assert gdata.as_uint8(between).tolist() == [0, 1, 255]
