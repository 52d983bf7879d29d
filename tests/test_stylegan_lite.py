import pytest
import torch
import torch.nn.functional as F
import yaml

from conftest import tiny_recipe
from gans.cli import main
from gans.errors import GansError
from gans.models.stylegan_lite import (ModulatedConv2d, StyleGANLiteDiscriminator,
                                       StyleGANLiteGenerator)
from gans.sampling.checkpoint import load_generator
from gans.sampling.generate import latents, style_mixing_grid

SMALL = {"latent_dim": 16, "w_dim": 16, "channel_base": 128, "channel_max": 32}


def small_generator(**kw):
    torch.manual_seed(0)
    return StyleGANLiteGenerator(**{**SMALL, **kw})


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(resolution, channels):
    g = small_generator(channels=channels, resolution=resolution)
    d = StyleGANLiteDiscriminator(channel_base=128, channel_max=32, channels=channels,
                                  resolution=resolution)
    images = g(torch.randn(6, 16))
    assert images.shape == (6, channels, resolution, resolution)
    assert d(images).shape == (6,)
    assert g.num_ws == 2 * (resolution.bit_length() - 3) + 2


def test_default_widths_are_a_few_million_parameters():
    g, d = StyleGANLiteGenerator(resolution=32), StyleGANLiteDiscriminator(resolution=32)
    count = sum(p.numel() for net in (g, d) for p in net.parameters())
    assert 1e6 < count < 5e6


def test_demodulation_gives_unit_norm_per_output_channel_and_matches_grouped_conv():
    torch.manual_seed(0)
    conv = ModulatedConv2d(5, 7, 3, w_dim=4)
    with torch.no_grad():
        conv.affine.weight.mul_(3.0)  # styles far from 1, so demodulation has work to do
    w = torch.randn(3, 4)
    weight = conv.modulated_weight(w)
    norms = weight.flatten(2).norm(dim=2)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    # The batched form in forward equals one convolution per image with its own weight.
    x = torch.randn(3, 5, 8, 8)
    grouped = F.conv2d(x.reshape(1, 15, 8, 8), weight.reshape(21, 5, 3, 3), padding=1, groups=3)
    assert torch.allclose(conv(x, w), grouped.reshape(3, 7, 8, 8), atol=1e-5)


def test_truncation_at_zero_gives_the_average_image_for_every_z():
    g = small_generator()
    for _ in range(5):  # training mode tracks the average w
        g(torch.randn(8, 16))
    assert g.w_avg.abs().sum() > 0
    g.eval()
    images = g(torch.randn(4, 16), truncation_psi=0.0, noise=False)
    average = g.synthesis(g.broadcast(g.w_avg[None]), noise=False)
    # A batch of 4 and a batch of 1 can run different convolution kernels (on an AVX2 CPU they
    # differ by about 1e-6), so the comparison with the single image allows for rounding.
    assert torch.allclose(images, average.expand_as(images), atol=1e-5)
    assert not torch.allclose(g(torch.randn(4, 16), noise=False)[0],
                              g(torch.randn(4, 16), noise=False)[1])


def test_noise_off_makes_the_generator_deterministic():
    g = small_generator().eval()
    for layer in g.modules():
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(0.5)
    z = torch.randn(2, 16)
    assert torch.equal(g(z, noise=False), g(z, noise=False))
    assert not torch.equal(g(z), g(z))


def test_style_mixing_only_in_training():
    g = small_generator(style_mixing=1.0)
    ws = g.broadcast(torch.randn(4, 16))
    torch.manual_seed(3)
    mixed = g.mix_styles(ws)
    assert torch.equal(mixed[:, 0], ws[:, 0])  # the first layer always keeps its own w
    assert torch.equal(mixed[:, -1], ws.roll(1, 0)[:, -1])  # the last always takes the other
    g.eval()
    z = torch.randn(4, 16)
    assert torch.equal(g(z, noise=False), g.synthesis(g.broadcast(g.mapping(z)), noise=False))


def test_style_mixing_grid_layout():
    g = small_generator().eval()
    grid = style_mixing_grid(g, [1, 2, 3])
    assert grid.shape == (16, 1, 32, 32)
    own = grid[1:4]
    assert torch.equal(grid[4], own[0]) and torch.equal(grid[8], own[1])  # first column
    # A seed mixed with itself is its own image.
    assert torch.allclose(grid[5], own[0], atol=1e-5) and torch.allclose(grid[10], own[1], atol=1e-5)
    assert not torch.allclose(grid[6], own[1], atol=1e-3)  # coarse from seed 1, fine from 2


def test_style_mixing_grid_takes_coarse_styles_from_the_row_and_fine_from_the_column():
    g = small_generator().eval()
    with torch.no_grad():  # styles far from their start, so that every layer's w shows
        for name, p in g.named_parameters():
            if "affine" in name:
                p.add_(torch.randn_like(p))
    seeds = [1, 2, 3]
    grid = style_mixing_grid(g, seeds)
    n = len(seeds) + 1
    with torch.no_grad():
        w = {s: g.mapping(latents(1, g.latent_dim, s)) for s in seeds}

        def from_ws(coarse_seed, fine_seed, coarse=4):
            # ws 0-3 drive the 4x4 and 8x8 layers (ws[3]: 8x8's RGB output and the next
            # upsampling convolution, as in StyleGAN2's mixing of "coarse" styles).
            layers = [w[coarse_seed]] * coarse + [w[fine_seed]] * (g.num_ws - coarse)
            return g.synthesis(torch.stack(layers, dim=1), noise=False)[0]

        for i, row in enumerate(seeds):
            assert torch.allclose(grid[(i + 1) * n], from_ws(row, row), atol=1e-5)  # row seed
            assert torch.allclose(grid[i + 1], from_ws(row, row), atol=1e-5)  # column seed
            for j, column in enumerate(seeds):
                cell = grid[(i + 1) * n + j + 1]
                assert torch.allclose(cell, from_ws(row, column), atol=1e-5), (row, column)
                if row != column:
                    # What the assertion above tells apart: mixes the other way round, at
                    # another cutoff, and either seed's own image.
                    for other in (from_ws(column, row), from_ws(row, column, coarse=2),
                                  from_ws(row, column, coarse=6), from_ws(row, row),
                                  from_ws(column, column)):
                        assert (cell - other).abs().max() > 1e-3


def test_bad_options_are_clear_errors():
    with pytest.raises(GansError, match="power of two"):
        StyleGANLiteGenerator(resolution=48)
    with pytest.raises(GansError, match="style_mixing"):
        StyleGANLiteGenerator(style_mixing=2.0)


def stylegan_recipe(tmp_path, image_folder, **train):
    raw = tiny_recipe(tmp_path, image_folder, **train)
    raw["name"] = "sg"
    raw["model"] = {"generator": {"name": "stylegan-lite", **SMALL},
                    "discriminator": {"name": "stylegan-lite", "channel_base": 128,
                                      "channel_max": 32}}
    raw["loss"] = {"r1_gamma": 1.0, "r1_every": 2, "pl_weight": 2.0, "pl_every": 2}
    raw["augment"] = {"policy": ["color", "translation", "cutout"], "ada_target": 0.6,
                      "ada_interval": 1, "ada_kimg": 0.05}
    return raw


def test_trains_from_the_cli_with_every_regularizer_and_samples(tmp_path, image_folder, capsys):
    path = tmp_path / "sg.yaml"
    path.write_text(yaml.safe_dump(stylegan_recipe(tmp_path, image_folder, steps=4)))
    assert main(["train", str(path), "--out", str(tmp_path / "runs")]) == 0
    run_dir = tmp_path / "runs" / "sg" / "version_0"
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state["augment.p"] > 0  # random data: D is sure of the reals at once, p rises
    assert state["objective.pl_mean"] > 0
    assert state["generator.w_avg"].abs().sum() > 0
    assert state["g_ema.module.w_avg"].abs().sum() > 0  # the EMA generator has one too
    assert (run_dir / "samples" / "step_0000004.png").is_file()

    ckpt = str(run_dir / "checkpoints" / "last.ckpt")
    assert main(["sample", ckpt, "--truncation", "0.5", "--num", "4", "--out",
                 str(tmp_path / "t.png")]) == 0
    assert main(["sample", ckpt, "--style-mix", "--seeds", "1-3", "--out",
                 str(tmp_path / "mix.png")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "mix.png").size == (4 * 16 + 5 * 2, 4 * 16 + 5 * 2)
    capsys.readouterr()
    # --truncate-z has no say in a style-mixing grid, and a folder is no place for one grid.
    (tmp_path / "folder").mkdir()
    for extra, says in ((["--truncate-z", "1.0", "--out", str(tmp_path / "z.png")], "--truncation"),
                        (["--out", str(tmp_path / "folder")], "--out FILE.png")):
        assert main(["sample", ckpt, "--style-mix", "--seeds", "1,2", *extra]) == 2
        assert says in capsys.readouterr().err
    assert not (tmp_path / "z.png").exists() and not list((tmp_path / "folder").iterdir())

    # Resume brings back the augmentation probability (a frozen p shows it was not reset).
    assert main(["train", "--resume", str(run_dir), "--set", "train.steps=5",
                 "--set", "augment.ada_kimg=1.0e+9"]) == 0
    resumed = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert resumed["augment.p"] == pytest.approx(state["augment.p"].item(), abs=1e-6)
    generator, _, _ = load_generator(run_dir / "checkpoints" / "last.ckpt")
    assert generator.w_avg.abs().sum() > 0


def test_truncation_and_style_mix_on_dcgan_are_clear_errors(trained_run, tmp_path, capsys):
    ckpt = str(trained_run / "checkpoints" / "last.ckpt")
    assert main(["sample", ckpt, "--truncation", "0.7", "--out", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err
    assert "--truncation" in err and "drop --truncation" in err and len(err.splitlines()) == 1
    assert main(["sample", ckpt, "--style-mix", "--seeds", "1,2", "--out",
                 str(tmp_path / "b.png")]) == 2
    assert "drop --style-mix" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))


def test_path_length_needs_a_mapping_network(tmp_path, image_folder, capsys):
    raw = tiny_recipe(tmp_path, image_folder)
    raw["loss"] = {"pl_weight": 1.0}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["recipe", str(path)]) == 2
    assert "loss.pl_weight" in capsys.readouterr().err
