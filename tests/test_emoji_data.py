"""data/build_emoji.py: the colour emoji dataset, from the Noto font or a local npm package."""

import importlib.util
import json
import sys
import urllib.request
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from gans.data import load_images
from gans.recipe import DataSection

SCRIPT = Path(__file__).resolve().parent.parent / "data" / "build_emoji.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("build_emoji", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_emoji"] = module
    spec.loader.exec_module(module)
    return module


build_emoji = _load_script()
needs_font = pytest.mark.skipif(not build_emoji.NOTO_FONT.is_file(),
                                reason="apt-get install fonts-noto-color-emoji")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"the build tried the network: {args[:1]}")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _max_chroma(img):
    data = img.tobytes()
    return max(max(px) - min(px) for px in zip(data[0::3], data[1::3], data[2::3]))


def _corners(img):
    w, h = img.size
    return [img.getpixel(xy) for xy in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))]


@needs_font
def test_font_build_is_colour_rgb_on_white_and_loads_as_a_folder(tmp_path, capsys):
    out = tmp_path / "emoji"
    assert build_emoji.main(["--out", str(out), "--limit", "12"]) == 0
    assert "12 emoji" in capsys.readouterr().out

    for size in (32, 64):
        paths = sorted((out / str(size)).glob("*.png"))
        assert len(paths) == 12
        assert all(p.stem.isalnum() and int(p.stem, 16) > 0 for p in paths)
        images = [Image.open(p) for p in paths]
        assert {img.mode for img in images} == {"RGB"}
        assert {img.size for img in images} == {(size, size)}
        assert len({img.tobytes() for img in images}) == 12
        for img in images:
            assert _max_chroma(img) > build_emoji.CHROMA_THRESHOLD
            assert all(min(px) >= 253 for px in _corners(img))

    assert "OFL" in (out / "LICENSE.txt").read_text()
    record = json.loads((out / "SOURCE.json").read_text())
    assert record["count"] == 12 and record["sizes"] == [32, 64]
    assert record["kind"] == "font" and record["background"] == "#ffffff"
    assert not list(tmp_path.glob(".emoji.*")), "the temporary build folder was left behind"

    loaded = load_images(DataSection(name="folder", root=str(out / "32"), resolution=32,
                                     channels=3))
    assert tuple(loaded.pixels.shape) == (12, 3, 32, 32)


@needs_font
def test_a_complete_build_is_kept_unless_forced(tmp_path, capsys):
    out = tmp_path / "emoji"
    argv = ["--out", str(out), "--limit", "3", "--sizes", "16"]
    assert build_emoji.main(argv) == 0
    stamp = (out / "SOURCE.json").read_text()
    assert build_emoji.main(argv) == 0
    assert "already holds" in capsys.readouterr().out
    assert (out / "SOURCE.json").read_text() == stamp

    # Other options are another dataset: rebuilt in place, the old size folder gone.
    assert build_emoji.main(["--out", str(out), "--limit", "4", "--sizes", "8"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["8", "LICENSE.txt", "SOURCE.json"]
    assert len(list((out / "8").glob("*.png"))) == 4
    assert build_emoji.main(["--out", str(out), "--limit", "4", "--sizes", "8", "--force"]) == 0
    assert "already" not in capsys.readouterr().out


def _fake_npm_package(root: Path) -> Path:
    """img/google/64 with RGBA pictures: two emoji, a sequence, a keycap and a grey one."""
    images = root / "img" / "google" / "64"
    images.mkdir(parents=True)

    def picture(name, draw):
        img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        draw(ImageDraw.Draw(img))
        img.save(images / f"{name}.png")

    picture("1f600", lambda d: d.ellipse((16, 16, 47, 47), fill=(255, 0, 0, 255)))
    # Half transparent: over the background it must blend with it, not with black.
    picture("263a-fe0f", lambda d: d.rectangle((8, 8, 55, 55), fill=(0, 0, 255, 128)))
    picture("1f1e6-1f1e8", lambda d: d.rectangle((4, 4, 59, 59), fill=(0, 255, 0, 255)))
    picture("0031-fe0f-20e3", lambda d: d.rectangle((4, 4, 59, 59), fill=(0, 255, 0, 255)))
    picture("26ab", lambda d: d.ellipse((4, 4, 59, 59), fill=(40, 40, 40, 255)))
    (images / "broken.png").write_bytes(b"not a png")
    return root


def test_npm_dir_pictures_are_composited_on_the_background(tmp_path, capsys):
    package = _fake_npm_package(tmp_path / "package")
    out = tmp_path / "emoji"
    argv = ["--source", "npm", "--npm-dir", str(package), "--out", str(out),
            "--sizes", "16,64", "--background", "0,128,0"]
    assert build_emoji.main(argv) == 0
    assert "2 emoji" in capsys.readouterr().out

    for size in (16, 64):
        names = sorted(p.stem for p in (out / str(size)).glob("*.png"))
        assert names == ["1f600", "263a"]
        red, blue = (Image.open(out / str(size) / f"{n}.png") for n in ("1f600", "263a"))
        for img in (red, blue):
            assert img.mode == "RGB" and img.size == (size, size)
            # Lanczos may ring by a level or two at the corner of a frame-filling square.
            for px in _corners(img):
                assert max(abs(a - b) for a, b in zip(px, (0, 128, 0))) <= 3, px
        centre = (size // 2, size // 2)
        assert red.getpixel(centre) == (255, 0, 0)
        r, g, b = blue.getpixel(centre)
        assert r <= 2 and abs(g - 64) <= 2 and abs(b - 128) <= 2

    assert "Apache-2.0" in (out / "LICENSE.txt").read_text()
    record = json.loads((out / "SOURCE.json").read_text())
    assert record["kind"] == "npm" and record["count"] == 2 and record["background"] == "#008000"


@pytest.mark.parametrize("argv, fragment", [
    (["--sizes", "0"], "--sizes"),
    (["--sizes", "abc"], "--sizes"),
    (["--sizes", "32,"], "--sizes"),
    (["--background", "nope"], "--background"),
    (["--limit", "-3"], "--limit"),
    (["--source", "bogus"], "--source"),
    (["--source", "npm", "--npm-dir", "/nonexistent"], "--npm-dir"),
    (["--source", "font", "--font", "/nonexistent/NotoColorEmoji.ttf"],
     "apt-get install fonts-noto-color-emoji"),
    (["--font", "/nonexistent/NotoColorEmoji.ttf", "--npm-dir", "/nonexistent"],
     "no emoji source"),
])
def test_bad_input_is_one_line_and_exit_2(argv, fragment, tmp_path, capsys):
    assert build_emoji.main(argv + ["--out", str(tmp_path / "emoji")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("build_emoji: error: ") and fragment in lines[0]
    assert "Traceback" not in captured.err and not captured.out
    assert not (tmp_path / "emoji").exists()


@pytest.mark.parametrize("make_out", [
    lambda tmp: tmp / "a-file" / "emoji",  # the parent is a file: nothing can be made there
    lambda tmp: tmp / "a-file",  # --out itself is a file
    lambda tmp: tmp / "theirs",  # a folder of someone else's files is never replaced
])
def test_unusable_out_is_one_line_and_exit_2(make_out, tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("keep me")
    package = _fake_npm_package(tmp_path / "package")
    argv = ["--source", "npm", "--npm-dir", str(package), "--out", str(make_out(tmp_path))]
    assert build_emoji.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("build_emoji: error: ")
    assert (tmp_path / "theirs" / "notes.txt").read_text() == "keep me"


def test_npm_tarball_extraction_keeps_only_flat_png_names(tmp_path):
    import io
    import tarfile

    def add(archive, name, data=b"png"):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        add(archive, "package/img/google/64/1f600.png")
        add(archive, "package/img/google/64/../../../../evil.png")
        add(archive, "/abs/package/img/google/64/1f601.png")
        add(archive, "package/img/google/32/1f602.png")
        add(archive, "package/package.json", b"{}")
    buffer.seek(0)
    cache = tmp_path / "cache" / "pkg"
    cache.parent.mkdir()
    build_emoji.extract_npm_images(buffer, cache)
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == ["1f600.png"]
    assert not list(tmp_path.rglob("evil.png"))
    assert sorted(p.name for p in cache.parent.iterdir()) == ["pkg"]


def test_npm_digest_is_checked():
    import base64
    import hashlib

    data = b"tarball bytes"
    good = {"integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()}
    build_emoji.verify_npm_digest(good, hashlib.sha512(data).digest(), "")
    with pytest.raises(ValueError):
        build_emoji.verify_npm_digest(good, hashlib.sha512(b"other").digest(), "")
    build_emoji.verify_npm_digest({"shasum": hashlib.sha1(data).hexdigest()}, b"",
                                  hashlib.sha1(data).hexdigest())
    with pytest.raises(ValueError):
        build_emoji.verify_npm_digest({}, b"", "")
