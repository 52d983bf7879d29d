"""The folder source on the files real image folders hold: damaged files, every Pillow mode."""

import warnings

import numpy as np
import pytest
from PIL import Image

from gans.data import BACKGROUND, load_images
from gans.errors import GansError
from gans.recipe import DataSection

SIZE = (8, 8)


def section(root, channels=3) -> DataSection:
    return DataSection(name="folder", root=str(root), resolution=8, channels=channels)


def corner(images, index, channels=3) -> tuple:
    return tuple(images.pixels[index, :channels, 0, 0].tolist())


def load_quietly(root, channels=3):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = load_images(section(root, channels))
    return images, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@pytest.fixture
def mixed_folder(tmp_path):
    """One file per case, named so that sorted order gives a known index to each good one."""
    root = tmp_path / "mixed"
    root.mkdir()
    Image.new("CMYK", SIZE, (0, 255, 255, 0)).save(root / "a_cmyk.jpg", quality=100)
    palette = Image.new("P", SIZE, 0)
    palette.putpalette([0, 0, 255] + [0, 0, 0] * 255)
    palette.save(root / "b_palette.png")
    clear = Image.new("P", SIZE, 0)
    clear.putpalette([0, 255, 0, 10, 20, 30] + [0, 0, 0] * 254)
    clear.putpixel((0, 0), 1)  # index 1 is the transparent one
    clear.save(root / "c_palette_transparent.png", transparency=1)
    Image.fromarray(np.full(SIZE, 32896, np.uint16)).save(root / "d_gray16.png")  # 128 * 257
    Image.fromarray(np.full(SIZE, 65535, np.int32), "I").save(root / "e_int32.tif")
    rgba = Image.new("RGBA", SIZE, (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 255, 0))
    rgba.save(root / "f_rgba.png")
    Image.new("LA", SIZE, (50, 0)).save(root / "g_la.png")
    Image.new("L", SIZE, 200).save(root / "h_gray.png")
    Image.new("RGB", SIZE, (10, 200, 30)).save(root / "i_rgb.bmp")
    # Damaged or not images at all, behind image extensions: skipped and counted.
    whole = root / "j_source.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(whole)
    data = whole.read_bytes()
    whole.unlink()
    (root / "x_truncated.png").write_bytes(data[: len(data) // 2])
    (root / "y_empty.png").write_bytes(b"")
    (root / "z_text.png").write_text("this is not a png\n")
    Image.fromarray(np.ones(SIZE, np.float32)).save(root / "z_float.tif")
    # Not images by their names: ignored without a word.
    (root / "notes.txt").write_text("hello")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "._h_gray.png").write_bytes(b"\0\5\26\7 AppleDouble")
    return root


def test_conversions_and_skips(mixed_folder):
    images, messages = load_quietly(mixed_folder)
    assert images.pixels.shape == (9, 3, 8, 8)
    red, blue, green = (255, 0, 0), (0, 0, 255), (0, 255, 0)
    assert all(abs(a - b) <= 3 for a, b in zip(corner(images, 0), red))  # CMYK (JPEG, lossy)
    assert corner(images, 1) == blue  # palette
    # Transparent palette entry -> background; the opaque neighbour keeps its colour.
    assert corner(images, 2) == BACKGROUND
    assert tuple(images.pixels[2, :, 7, 7].tolist()) == green
    assert corner(images, 3) == (128, 128, 128)  # 16-bit mid-gray scaled, not clipped to 255
    assert corner(images, 4) == (255, 255, 255)  # 32-bit integer at the 16-bit maximum
    assert corner(images, 5) == BACKGROUND  # RGBA: transparent pixel
    assert tuple(images.pixels[5, :, 7, 7].tolist()) == red  # RGBA: opaque pixel
    assert corner(images, 6) == BACKGROUND  # LA fully transparent
    assert corner(images, 7) == (200, 200, 200)  # grayscale in an RGB run
    assert corner(images, 8) == (10, 200, 30)

    assert len(messages) == 1, messages
    (message,) = messages
    assert "\n" not in message
    assert "skipped 4 unreadable image file(s)" in message
    assert "x_truncated.png" in message and "y_empty.png (empty file)" in message
    assert str(mixed_folder) in message


def test_report_is_one_warning_for_many_bad_files(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    Image.new("RGB", SIZE, (1, 2, 3)).save(root / "good.png")
    for i in range(30):
        (root / f"bad{i:02d}.png").write_bytes(b"")
    with pytest.warns(UserWarning) as record:
        images = load_images(section(root))
    assert len(images.pixels) == 1
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 30 unreadable" in message and "bad00.png" in message
    assert "bad02.png" not in message  # one or two examples, not the whole list


def test_grayscale_run(mixed_folder):
    images, _ = load_quietly(mixed_folder, channels=1)
    assert images.pixels.shape == (9, 1, 8, 8)
    assert corner(images, 7, 1) == (200,)  # gray stays exactly gray
    assert corner(images, 3, 1) == (128,)
    assert corner(images, 5, 1) == (255,)  # white background
    assert abs(corner(images, 8, 1)[0] - round(0.299 * 10 + 0.587 * 200 + 0.114 * 30)) <= 1


def test_gray_levels_survive_a_grayscale_run(tmp_path):
    root = tmp_path / "levels"
    root.mkdir()
    for level in (0, 1, 127, 128, 254, 255):
        Image.new("L", SIZE, level).save(root / f"{level:03d}.png")
        Image.new("RGB", SIZE, (level,) * 3).save(root / f"{level:03d}_rgb.png")
    images, messages = load_quietly(root, channels=1)
    assert not messages
    assert images.pixels[:, 0, 0, 0].tolist() == [0, 0, 1, 1, 127, 127, 128, 128, 254, 254,
                                                  255, 255]


def test_folder_with_only_bad_images_is_an_error(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "empty.png").write_bytes(b"")
    (root / "text.jpg").write_text("hello")
    (root / "readme.txt").write_text("hello")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error says it all; no warning besides
        with pytest.raises(GansError) as info:
            load_images(section(root))
    message = str(info.value)
    assert "\n" not in message
    assert "holds no readable image" in message and "2 image file(s) skipped" in message
    assert "empty.png (empty file)" in message and "point data.root at your images" in message


def test_cli_reports_a_folder_of_bad_images_in_one_line(tmp_path, capsys):
    import yaml

    from gans.cli import main

    root = tmp_path / "bad"
    root.mkdir()
    (root / "zero.png").write_bytes(b"")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"name": "folder", "root": str(root),
                                               "channels": 3}}))
    assert main(["train", str(recipe), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gans train: error: data.root")
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()
