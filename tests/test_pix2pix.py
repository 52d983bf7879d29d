"""Paired image-to-image training (pix2pix): edges and pair folders, unet and patchgan, the
objective's L1 term, a short run that resumes, and hand drawings brought to the input form."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from gans.data import load_images
from gans.errors import GansError
from gans.recipe import DataSection, validate

FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not FASHION.exists(), reason="Fashion-MNIST not installed")


def edges_section(**keys) -> DataSection:
    return DataSection(**{"name": "edges", "source": "fashion-mnist", "split": "test",
                          "resolution": 32, "limit": 64, **keys})


@needs_fashion
def test_edges_are_deterministic_cached_lines_on_white(monkeypatch):
    from gans import paired
    from gans.cache import cache_dir

    first = load_images(edges_section())
    cached = sorted((cache_dir() / "datasets").glob("edges-*.pt"))
    assert cached, "the edge maps were not cached"
    # A second load reads the cache: the extractor is not called again.
    monkeypatch.setattr(paired, "edges_of", lambda gray: pytest.fail("edges recomputed"))
    second = load_images(edges_section())
    assert torch.equal(first.conditions, second.conditions)
    assert torch.equal(first.pixels, second.pixels)
    assert first.conditions.shape == first.pixels.shape == (64, 1, 32, 32)
    assert set(first.conditions.unique().tolist()) == {0, 255}  # black lines on white
    ink = (first.conditions == 0).float().mean().item()
    assert 0.02 < ink < 0.3  # outlines, not blank and not filled
    assert torch.equal(first.labels, load_images(DataSection(split="test", limit=64)).labels)


@needs_fashion
def test_edges_share_the_cached_features_of_their_source_images():
    """The targets of Fashion-MNIST edges are Fashion-MNIST's own images: FID on the edges
    reuses the reference features that Fashion-MNIST runs cached instead of a second Inception
    pass over them; other images under the same name get a key of their own."""
    from types import SimpleNamespace

    from gans.evaluation.fid import real_key

    weights = SimpleNamespace(sha256="w")
    edges, plain = edges_section(), DataSection(split="test", resolution=32, limit=64)
    edge_images, plain_images = load_images(edges), load_images(plain)
    assert torch.equal(edge_images.pixels, plain_images.pixels)
    assert (real_key(edges, "test", edge_images, weights, 64)
            == real_key(plain, "test", plain_images, weights, 64))
    other = load_images(edges_section(limit=32))
    assert real_key(edges, "test", other, weights, 64) != real_key(plain, "test", plain_images,
                                                                   weights, 64)


def test_edge_map_thins_and_drops_specks():
    from gans.paired import edge_map

    image = np.zeros((32, 32), np.uint8)
    image[8:24, 8:24] = 255  # a filled square: its outline is the edge
    image[2, 2] = 255  # a speck: below the smallest component kept
    edges = edge_map(image) == 0
    assert edges[8:24, 8:24].any() and not edges[0:5, 0:5].any()
    assert not edges[12:20, 12:20].any()  # the inside stays empty
    # One pixel wide: no 2x2 block of ink anywhere.
    blocks = edges[:-1, :-1] & edges[1:, :-1] & edges[:-1, 1:] & edges[1:, 1:]
    assert not blocks.any()


def pair_image(path: Path, size=(20, 20), value=0):
    Image.new("RGB", size, (value, value, value)).save(path)


def test_side_by_side_and_two_folder_pairs(tmp_path):
    ab = tmp_path / "ab"
    ab.mkdir()
    for i in range(3):
        image = Image.new("RGB", (40, 20), "white")
        ImageDraw.Draw(image).rectangle([20, 0, 39, 19], fill=(10 * i, 0, 0))
        image.save(ab / f"{i}.png")
    pairs = load_images(DataSection(name="pairs", root=str(ab), resolution=16, channels=3))
    assert pairs.pixels.shape == pairs.conditions.shape == (3, 3, 16, 16)
    assert (pairs.conditions == 255).all()  # the left half is the input
    assert pairs.pixels[2, 0].float().mean().item() == pytest.approx(20, abs=1)

    two = tmp_path / "two"
    for side, value in (("A", 0), ("B", 200)):
        (two / "train" / side).mkdir(parents=True)
        for name in ("x.png", "y.png"):
            pair_image(two / "train" / side / name, value=value)
    pairs = load_images(DataSection(name="pairs", root=str(two), resolution=16, channels=1))
    assert pairs.pixels.shape == (2, 1, 16, 16)
    assert (pairs.conditions == 0).all() and (pairs.pixels == 200).all()


@pytest.mark.parametrize("problem, message", [
    ("lonely", "has no partner in B/"),
    ("sizes", "must have the same size"),
    ("odd", "an odd number"),
    ("unreadable", "cannot read this pair image"),
])
def test_mismatched_pairs_are_one_line_errors(tmp_path, problem, message):
    root = tmp_path / "pairs"
    if problem == "odd":
        root.mkdir()
        pair_image(root / "0.png", size=(41, 20))
    else:
        (root / "A").mkdir(parents=True)
        (root / "B").mkdir()
        pair_image(root / "A" / "0.png")
        pair_image(root / "B" / "0.png", size=(24, 20) if problem == "sizes" else (20, 20))
        if problem == "lonely":
            pair_image(root / "A" / "1.png")
        if problem == "unreadable":
            (root / "B" / "0.png").write_bytes(b"not a png")
    with pytest.raises(GansError) as caught:
        load_images(DataSection(name="pairs", root=str(root), resolution=16))
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("resolution", [32, 64, 256])
def test_unet_keeps_the_input_size_and_has_no_latent(resolution):
    from gans.models.base import Generator, Translator, missing
    from gans.models.pix2pix import UNetGenerator

    unet = UNetGenerator(width=4, channels=3, resolution=resolution)
    out = unet(torch.rand(2, 3, resolution, resolution) * 2 - 1)
    assert out.shape == (2, 3, resolution, resolution) and out.abs().max() <= 1
    assert not missing(unet, Translator) and missing(unet, Generator) == ["latent_dim"]
    unet.eval()  # dropout stays on: the same input gives different images under new noise
    x = torch.zeros(1, 3, resolution, resolution)
    assert not torch.equal(unet(x), unet(x))


@pytest.mark.parametrize("layers, patch", [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field_and_shape(layers, patch):
    from gans.models.pix2pix import PatchGANDiscriminator, receptive_field

    assert receptive_field(layers) == patch
    size = 128
    d = PatchGANDiscriminator(width=4, channels=1, resolution=size, layers=layers, norm="none")
    images = torch.zeros(1, 1, size, size, requires_grad=True)
    logits = d(images, torch.zeros(1, 1, size, size))
    side = int(logits.size(1) ** 0.5)
    assert logits.shape == (1, side * side)
    # The input pixels one logit in the middle depends on: at most the stated patch.
    logits.view(side, side)[side // 2, side // 2].backward()
    rows = images.grad[0, 0].abs().sum(1).nonzero()
    assert patch - 4 <= rows.max() - rows.min() + 1 <= patch


def test_l1_term_is_weight_times_mean_absolute_difference():
    from gans.objectives.pix2pix import Pix2Pix

    class Context:
        real = torch.tensor([[[[0.5, -1.0]]], [[[0.0, 1.0]]]])
        fake = torch.tensor([[[[0.0, -0.5]]], [[[1.0, 1.0]]]])

        def g_logits(self):
            return torch.zeros(2, 4)

    terms = Pix2Pix(l1_weight=100.0).g_main(Context())
    assert terms["l1"].item() == pytest.approx(100 * (0.5 + 0.5 + 1.0 + 0.0) / 4)
    assert terms["g_adversarial"].item() == pytest.approx(np.log(2))


def recipe_dict(**data) -> dict:
    return {"model": {"generator": {"name": "unet", "width": 4},
                      "discriminator": {"name": "patchgan", "width": 4, "layers": 1}},
            "loss": {"name": "pix2pix"},
            "data": {"name": "edges", "source": "fashion-mnist", "resolution": 32, **data}}


@pytest.mark.parametrize("change, message", [
    ({"data": {"name": "fashion-mnist", "source": None}}, "use paired data"),
    ({"data": {"name": "fashion-mnist", "source": None},
      "model": {"generator": {"name": "dcgan"}}}, "loss.name 'pix2pix' .* needs paired data"),
    ({"model": {"generator": {"name": "dcgan"}}}, "needs an image-to-image generator"),
    ({"data": {"source": "fashion-mnist", "name": "fashion-mnist"}}, "only read by derived"),
    ({"augment": {"policy": ["translation"]}}, "break their pairing"),
    ({"train": {"standing_statistics": 64}}, "'train.standing_statistics'.*set it to 0"),
])
def test_recipe_checks_pairing(change, message):
    from gans.errors import RecipeError
    from gans.recipe import deep_merge

    raw = deep_merge(recipe_dict(), change)
    with pytest.raises(RecipeError, match=message):
        validate(raw)


@needs_fashion
def test_five_steps_train_resume_and_translate(tmp_path, capsys):
    import gans
    from gans.cli import main

    overrides = ["data.limit=64", "train.batch_size=8", "train.steps=3",
                 "train.sample_every=3", "train.checkpoint_every=3", "metrics.fid_every=0",
                 "model.generator.width=4", "model.discriminator.width=4",
                 "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
                 "trainer.precision=32-true"]
    args = ["train", "recipes/pix2pix/fashion-mnist-edges.yaml", "--out", str(tmp_path)]
    assert main([*args, *[a for o in overrides for a in ("--set", o)]]) == 0
    run = tmp_path / "fashion-mnist-edges" / "version_0"
    first = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert main(["train", "--resume", str(run), "--set", "train.steps=5"]) == 0
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 10 and first["global_step"] == 6
    grid = Image.open(run / "samples" / "step_0000003.png")
    assert grid.height < grid.width  # three rows: input, output, target
    # The checkpoint translates a drawing; it refuses seeds.
    drawing = tmp_path / "doodle.png"
    image = Image.new("RGB", (97, 61), "white")
    ImageDraw.Draw(image).line([(10, 10), (80, 50), (20, 55)], fill="black", width=4)
    image.save(drawing)
    out = tmp_path / "out.png"
    assert main(["sample", str(run / "checkpoints" / "last.ckpt"), "--sketch", str(drawing),
                 "--out", str(out)]) == 0
    assert Image.open(out).size == (32, 32)
    assert gans.inspect(out)["kind"] == "sketch"
    capsys.readouterr()
    assert main(["sample", str(run / "checkpoints" / "last.ckpt"), "--out",
                 str(tmp_path / "g.png")]) == 2
    assert "from sketches, not from seeds" in capsys.readouterr().err
    (tmp_path / "empty.png").write_bytes(b"")
    assert main(["sample", str(run / "checkpoints" / "last.ckpt"), "--sketch",
                 str(tmp_path / "empty.png"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "empty file" in err and len(err.splitlines()) == 1


def test_sketch_on_a_noise_model_is_refused():
    from gans.api import LoadedGenerator
    from gans.models.dcgan import DCGANGenerator

    recipe = validate({"model": {"generator": {"name": "dcgan", "width": 4}}})
    model = LoadedGenerator(DCGANGenerator(width=4), recipe, "raw", Path("g.ckpt"))
    with pytest.raises(GansError, match="makes images from noise, not sketches"):
        model.save_translations("any.png")


def test_a_drawing_becomes_the_training_edges_form():
    from gans.data import decoded_image
    from gans.paired import normalise_sketch as normalise

    def normalise_sketch(image, resolution):
        return normalise(decoded_image(image), resolution)

    image = Image.new("RGBA", (213, 129), "white")  # odd size, wide, with alpha
    ImageDraw.Draw(image).rectangle([40, 20, 170, 110], outline="black", width=7)
    sketch = normalise_sketch(image, 32)
    assert sketch.shape == (1, 1, 32, 32) and sketch.dtype == torch.uint8
    assert set(sketch.unique().tolist()) == {0, 255}
    ink = sketch[0, 0] == 0
    assert ink.float().mean() < 0.25  # thinned: an outline, not a thick frame
    blocks = ink[:-1, :-1] & ink[1:, :-1] & ink[:-1, 1:] & ink[1:, 1:]
    assert not blocks.any()
    cols = ink.any(0).nonzero()
    assert cols.min() <= 3 and cols.max() >= 28  # cropped to the drawing, which fills the frame
    # White lines on black are the same drawing.
    inverted = Image.eval(image.convert("L"), lambda v: 255 - v)
    assert torch.equal(normalise_sketch(inverted, 32), sketch)
    with pytest.raises(GansError, match="no lines"):
        normalise_sketch(Image.new("L", (50, 40), 255), 32)
