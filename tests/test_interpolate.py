import sys

import pytest
import torch
from PIL import Image

from gans.cli import main
from gans.sampling.provenance import read_info
from gans.sampling.checkpoint import load_generator
from gans.sampling.generate import generate, interpolation_frames, slerp
from test_stylegan_lite import small_generator


def test_slerp_keeps_the_ends_and_the_norm():
    a, b = torch.randn(1, 64), torch.randn(1, 64)
    assert torch.equal(slerp(a, b, 0.0), a)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    b = b / b.norm() * a.norm()
    assert torch.allclose(slerp(a, b, 0.5).norm(), a.norm(), rtol=1e-4)
    assert torch.allclose(slerp(a, a, 0.3), a)  # parallel: no division by zero


def test_dcgan_walk_starts_at_the_seed_sample_and_loops(trained_run):
    generator, _, _ = load_generator(trained_run / "checkpoints" / "last.ckpt")
    frames = interpolation_frames(generator, [0, 1, 2], 5)
    assert frames.shape[0] == 15
    assert torch.equal(frames[0], generate(generator, 1, 0)[0])
    assert torch.equal(frames[5], generate(generator, 1, 1)[0])
    assert torch.equal(frames[10], generate(generator, 1, 2)[0])
    # The last segment heads back to seed 0, so the last frame is near the first.
    assert (frames[14] - frames[0]).abs().mean() < (frames[10] - frames[0]).abs().mean()


def test_stylegan_walk_is_linear_in_w_with_fixed_noise():
    g = small_generator()
    for layer in g.modules():
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(0.5)
    for _ in range(3):
        g(torch.randn(8, 16))  # track an average w for truncation
    g.eval()
    frames = interpolation_frames(g, [4, 9], 4, truncation=0.7)
    assert frames.shape == (8, 1, 32, 32)
    assert torch.equal(frames[0], generate(g, 1, 4, truncation=0.7)[0])
    assert torch.equal(frames, interpolation_frames(g, [4, 9], 4, truncation=0.7))
    # The middle frame is the synthesis of the mean of the two (truncated) w.
    ws = g.mapping(torch.cat([torch.randn(1, 16, generator=torch.Generator().manual_seed(s))
                              for s in (4, 9)]), 0.7)
    from gans.sampling.generate import seeded_noise

    with torch.no_grad(), seeded_noise(4, torch.device("cpu")):
        middle = g.synthesis(g.broadcast(torch.lerp(ws[:1], ws[1:], 0.5)))
    assert torch.allclose(frames[2], middle[0], atol=1e-5)


def test_gif_from_the_cli(trained_run, tmp_path, capsys):
    ckpt = str(trained_run / "checkpoints" / "last.ckpt")
    out = tmp_path / "walk.gif"
    assert main(["sample", ckpt, "--interpolate", "--seeds", "0-3", "--frames", "6",
                 "--out", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 24 and gif.size == (16, 16)
        assert gif.info.get("loop") == 0
    info = read_info(out)
    assert info["kind"] == "interpolation" and info["seeds"] == "0,1,2,3"
    assert info["frames"] == "6"


def test_png_grid_of_frames_matches_the_single_sample(trained_run, tmp_path):
    ckpt = str(trained_run / "checkpoints" / "last.ckpt")
    assert main(["sample", ckpt, "--interpolate", "--seeds", "0,1", "--frames", "3",
                 "--out", str(tmp_path / "walk.png")]) == 0
    assert main(["sample", ckpt, "--seed", "0", "--num", "1",
                 "--out", str(tmp_path / "one.png")]) == 0
    grid = Image.open(tmp_path / "walk.png").convert("RGB")
    assert grid.size == (3 * 18 + 2, 2 * 18 + 2)  # one row per pair of seeds
    first = grid.crop((2, 2, 18, 18))
    assert first.tobytes() == Image.open(tmp_path / "one.png").convert("RGB").tobytes()


def test_bad_options_are_one_line_errors(trained_run, tmp_path, capsys, monkeypatch):
    ckpt = str(trained_run / "checkpoints" / "last.ckpt")
    base = ["sample", ckpt, "--interpolate"]
    cases = [
        (["--seeds", "0,1", "--frames", "1", "--out", "w.gif"], "--frames must be at least 2"),
        (["--seeds", "0", "--out", "w.gif"], "at least two --seeds"),
        (["--out", "w.gif"], "--interpolate needs --seeds"),
        (["--seeds", "0,1", "--out", "w.avi"], ".gif, an .mp4 or a .png"),
        (["--seeds", "0,1", "--fps", "0", "--out", "w.gif"], "--fps above 0"),
        (["--seeds", "0,1", "--style-mix", "--out", "w.png"], "pick one"),
        (["--seeds", "0,1", "--truncation", "0.5", "--out", "w.gif"], "drop --truncation"),
    ]
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    cases.append((["--seeds", "0,1", "--out", "w.mp4"], "pip install av"))
    for extra, message in cases:
        argv = base + [a if not a.startswith("w.") else str(tmp_path / a) for a in extra]
        assert main(argv) == 2, extra
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err
    assert not list(tmp_path.iterdir())


def test_mp4_where_pyav_is_installed(trained_run, tmp_path):
    av = pytest.importorskip("av")
    out = tmp_path / "walk.mp4"
    assert main(["sample", str(trained_run / "checkpoints" / "last.ckpt"), "--interpolate",
                 "--seeds", "0,1", "--frames", "4", "--out", str(out)]) == 0
    with av.open(str(out)) as video:
        assert sum(1 for _ in video.decode(video=0)) == 8
        assert "gans:kind" in video.metadata.get("comment", "")
