"""Class-conditional models: networks, training from the CLI, `gans sample --class`, intra-FID."""

import gzip
import hashlib
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_recipe, train_recipe
from PIL import Image

from gans.cli import main
from gans.data import DEBIAN_FASHION_MNIST, class_names
from gans.errors import GansError
from gans.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gans.models.stylegan_lite import StyleGANLiteDiscriminator, StyleGANLiteGenerator
from gans.recipe import DataSection
from gans.sampling.generate import class_labels, resolve_class

FAMILIES = {
    "dcgan": (DCGANGenerator, DCGANDiscriminator, {"width": 8}, {"width": 8}),
    "stylegan-lite": (StyleGANLiteGenerator, StyleGANLiteDiscriminator,
                      {"latent_dim": 16, "w_dim": 16, "channel_base": 128, "channel_max": 16},
                      {"channel_base": 128, "channel_max": 16}),
}


def networks(family, num_classes):
    g_cls, d_cls, g_kw, d_kw = FAMILIES[family]
    torch.manual_seed(0)
    return (g_cls(resolution=16, num_classes=num_classes, **g_kw),
            d_cls(resolution=16, num_classes=num_classes, **d_kw))


@pytest.mark.parametrize("family", FAMILIES)
def test_conditional_shapes_and_projection(family):
    generator, discriminator = networks(family, num_classes=10)
    labels = torch.tensor([0, 3, 7, 9])
    images = generator(torch.randn(4, generator.latent_dim), labels)
    assert images.shape == (4, 1, 16, 16)
    logits = discriminator(images, labels)
    assert logits.shape == (4,)
    # The projection term: the same images read differently under another class.
    other = discriminator(images, (labels + 1) % 10)
    assert (logits - other).abs().min() > 1e-6
    # And G's output depends on the class, once training has moved conditional BatchNorm's
    # per-class scales and shifts away from their start (1 and 0: plain BatchNorm).
    with torch.no_grad():
        for name, p in generator.named_parameters():
            if name.endswith(("gamma.weight", "beta.weight")):
                p.add_(0.5 * torch.randn_like(p))
    z = torch.randn(2, generator.latent_dim)
    generator.eval()
    first, other = generator(z, torch.tensor([0, 0])), generator(z, torch.tensor([5, 5]))
    assert not torch.allclose(first, other)


@pytest.mark.parametrize("family", FAMILIES)
def test_conditional_networks_need_labels(family):
    generator, discriminator = networks(family, num_classes=3)
    with pytest.raises(GansError, match="class-conditional"):
        generator(torch.randn(2, generator.latent_dim))
    with pytest.raises(GansError, match="class-conditional"):
        discriminator(torch.randn(2, 1, 16, 16))


# sha256 of the sorted "key shape" lines of each unconditional network's state_dict (FAMILIES'
# sizes), as commit 3b89d61 built them, before class conditioning existed.
LAYOUT_BEFORE_CONDITIONING = {"dcgan": ("9d1299db5b270792", "1636b4ff1e27d654"),
                              "stylegan-lite": ("03f8eb8bef4a5020", "97ae17461344ca69")}


def layout(network):
    text = "\n".join(f"{k} {tuple(v.shape)}" for k, v in sorted(network.state_dict().items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("family", FAMILIES)
def test_unconditional_state_dict_is_unchanged(family):
    # Checkpoints of unconditional models from before class conditioning still load.
    g_cls, d_cls, g_kw, d_kw = FAMILIES[family]
    assert (layout(g_cls(resolution=16, **g_kw)), layout(d_cls(resolution=16, **d_kw))) == \
        LAYOUT_BEFORE_CONDITIONING[family]
    # And labels passed to an unconditional discriminator change nothing.
    plain = d_cls(resolution=16, **d_kw).eval()
    x = torch.randn(2, 1, 16, 16)
    assert torch.equal(plain(x), plain(x, torch.tensor([1, 2])))


# Fashion-MNIST's label order as its authors publish it (github.com/zalandoresearch/fashion-mnist),
# written out here so that the code's own table is checked against something it did not produce.
FASHION_MNIST_LABELS = {0: "T-shirt/top", 1: "Trouser", 2: "Pullover", 3: "Dress", 4: "Coat",
                        5: "Sandal", 6: "Shirt", 7: "Sneaker", 8: "Bag", 9: "Ankle boot"}


def test_fashion_mnist_class_names_follow_the_dataset_label_order():
    from gans.evaluation.classifiers import fashion_mnist as classifier

    names = class_names(DataSection(name="fashion-mnist", conditional=True))
    assert dict(enumerate(names)) == FASHION_MNIST_LABELS
    # The classifier behind conditional_accuracy indexes its logits by the same labels.
    assert dict(enumerate(classifier.CLASS_NAMES)) == FASHION_MNIST_LABELS
    assert class_names(DataSection(name="fashion-mnist", conditional=False)) == ()


@pytest.mark.parametrize("text, label", [
    ("tshirt", 0), ("T_SHIRT", 0), ("t-shirt/top", 0), ("top", 0), ("trouser", 1),
    ("Pullover", 2), ("dress", 3), ("COAT", 4), ("sandal", 5), ("shirt", 6), ("sneaker", 7),
    ("Bag", 8), ("ankle-boot", 9), ("ankle_boot", 9), ("Ankle Boot", 9), ("7", 7), ("0", 0),
    (" 9 ", 9),
])
def test_class_names_and_aliases_resolve_to_the_dataset_label(text, label):
    names = class_names(DataSection(name="fashion-mnist", conditional=True))
    assert resolve_class(text, names) == label


def test_resolve_class_refuses_what_names_no_class():
    names = class_names(DataSection(name="fashion-mnist", conditional=True))
    for text in ("10", "hat", "", "sneakers"):
        with pytest.raises(GansError, match="not a class of this checkpoint"):
            resolve_class(text, names)
    # MNIST's classes are digits: the name and the index agree.
    digits = class_names(DataSection(name="mnist", conditional=True))
    assert [resolve_class(str(d), digits) for d in range(10)] == list(range(10))


def test_class_labels_for_one_class_every_class_and_rows_per_class():
    assert class_labels(0, 5) is None and class_labels(0, 5, class_index=3) is None
    assert class_labels(4, 3, class_index=2).tolist() == [2, 2, 2]
    assert class_labels(3, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    # One grid row per class: class-major.
    assert class_labels(3, 0, per_class=2).tolist() == [0, 0, 1, 1, 2, 2]


needs_fashion_mnist = pytest.mark.skipif(not DEBIAN_FASHION_MNIST.exists(),
                                         reason="Fashion-MNIST is not installed")


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cond")
    raw = {
        "name": "tiny-cond", "seed": 1,
        # Shaped like recipes/dcgan/fashion-mnist-cond.yaml: RpGAN with its penalties, and a
        # projection D without BatchNorm and with the minibatch standard deviation.
        "model": {"generator": {"name": "dcgan", "latent_dim": 8, "width": 8},
                  "discriminator": {"name": "dcgan", "width": 8, "norm": "none",
                                    "mbstd_group": 4}},
        "loss": {"name": "rpgan", "gamma": 0.1, "reg_every": 2},
        "data": {"name": "fashion-mnist", "resolution": 16, "channels": 1, "limit": 64,
                 "conditional": True},
        "train": {"steps": 4, "batch_size": 8, "checkpoint_every": 2, "sample_every": 2,
                  "sample_grid": 4, "log_every": 1, "ema": 0.9},
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
        "metrics": {"fid_every": 0},
    }
    return train_recipe(raw, tmp, tmp / "runs") / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def learned_classes_run(tmp_path_factory):
    """A conditional DCGAN trained long enough for its classes to tell apart (about 20 s).

    Conditional BatchNorm's per-class scales start at 1 and move by about the learning rate a
    step: at the usual 2e-4, 500 steps leave the classes indistinguishable; at 1e-3 the bundled
    classifier agrees with about half the requested classes (chance: a tenth).
    """
    tmp = tmp_path_factory.mktemp("learned")
    optim = {"lr": 1.0e-3, "betas": [0.5, 0.999]}
    raw = {
        "name": "learned", "seed": 1,
        "model": {"generator": {"name": "dcgan", "latent_dim": 32, "width": 16},
                  "discriminator": {"name": "dcgan", "width": 16}},
        "optim": {"generator": optim, "discriminator": optim},
        "data": {"name": "fashion-mnist", "resolution": 16, "channels": 1, "limit": 6400,
                 "conditional": True},
        "train": {"steps": 500, "batch_size": 64, "checkpoint_every": 500, "sample_every": 500,
                  "sample_grid": 4, "log_every": 100, "ema": 0.99},
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
        "metrics": {"fid_every": 0},
    }
    return train_recipe(raw, tmp, tmp / "runs") / "checkpoints" / "last.ckpt"


def sampled(checkpoint, folder, *flags):
    """The images `gans sample` writes, one PNG each, as a uint8 tensor (N, 1, H, W)."""
    assert main(["sample", str(checkpoint), *flags, "--out", f"{folder}/"]) == 0
    pngs = sorted(folder.glob("*.png"))
    return torch.stack([torch.from_numpy(np.array(Image.open(p).convert("L")))[None]
                        for p in pngs])


@needs_fashion_mnist
def test_class_changes_the_images_and_only_the_class(learned_classes_run, tmp_path):
    ckpt = learned_classes_run
    sneakers = sampled(ckpt, tmp_path / "a", "--class", "sneaker", "--num", "6", "--seed", "3")
    again = sampled(ckpt, tmp_path / "b", "--class", "Sneaker", "--num", "6", "--seed", "3")
    bags = sampled(ckpt, tmp_path / "c", "--class", "bag", "--num", "6", "--seed", "3")
    assert sneakers.shape == (6, 1, 16, 16)
    assert torch.equal(sneakers, again)
    # Every image changes with the class, not only some: the same z under another label.
    differs = (sneakers.float() - bags.float()).abs().flatten(1).mean(1)
    assert (differs > 2).all(), differs


@needs_fashion_mnist
def test_the_classifier_sees_the_requested_class(learned_classes_run, tmp_path):
    from gans.evaluation.classifiers.fashion_mnist import load_classifier

    classifier = load_classifier()
    # Each class asked for by another of the names `--class` takes.
    asked = {0: "tshirt", 1: "trouser", 2: "pullover", 3: "Dress", 4: "coat", 5: "sandal",
             6: "SHIRT", 7: "sneaker", 8: "bag", 9: "ankle-boot"}
    agreement = {}
    for label, text in asked.items():
        images = sampled(learned_classes_run, tmp_path / text, "--class", text, "--num", "20")
        with torch.no_grad():
            predicted = classifier(images).argmax(1)
        agreement[FASHION_MNIST_LABELS[label]] = (predicted == label).float().mean().item()
    mean = sum(agreement.values()) / len(agreement)
    # Chance is 0.1; this run gives about 0.45 (some classes near 1, shirt and coat near
    # chance, as the classifier itself confuses them most).
    assert mean > 0.25, agreement


@needs_fashion_mnist
def test_checkpoint_keeps_class_names(conditional_run):
    ckpt = torch.load(conditional_run, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["class_names"][7] == "Sneaker"
    assert "generator.net.1.gamma.weight" in ckpt["state_dict"]
    assert "discriminator.embed.weight" in ckpt["state_dict"]


@needs_fashion_mnist
def test_sample_by_class(conditional_run, tmp_path, capsys):
    out = tmp_path / "sneakers.png"
    assert main(["sample", str(conditional_run), "--class", "sneaker", "--num", "4",
                 "--out", str(out)]) == 0
    assert Image.open(out).text["gans:class"] == "Sneaker"
    for name in ("ankle-boot", "T_SHIRT", "tshirt", "9"):
        assert main(["sample", str(conditional_run), "--class", name, "--num", "1",
                     "--out", str(tmp_path / "one.png")]) == 0


@needs_fashion_mnist
def test_per_class_grid_has_one_row_per_class(conditional_run, tmp_path):
    out = tmp_path / "grid.png"
    assert main(["sample", str(conditional_run), "--per-class", "2", "--out", str(out)]) == 0
    # torchvision's grid: 16 px images with 2 px padding around each.
    assert Image.open(out).size == (2 * 18 + 2, 10 * 18 + 2)


@needs_fashion_mnist
def test_unknown_class_lists_the_known_ones(conditional_run, tmp_path, capsys):
    assert main(["sample", str(conditional_run), "--class", "hat",
                 "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'hat'" in err and "7=Sneaker" in err and "9=Ankle boot" in err


def test_class_on_unconditional_checkpoint_is_an_error(trained_run, tmp_path, capsys):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    for flags in (["--class", "sneaker"], ["--per-class", "2"]):
        assert main(["sample", str(ckpt), *flags, "--out", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "not class-conditional" in err


def test_conditional_data_without_labels_is_an_error(tmp_path, capsys):
    # Celeba carries no class labels; labelled folders are tests/test_folder_labels.py's.
    raw = tiny_recipe(tmp_path, tmp_path)
    raw["data"].update(name="celeba", conditional=True)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["train", str(recipe), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data.conditional" in err


class RandomFeatures(torch.nn.Module):
    """A fixed random projection of pooled pixels: fast stand-in for Inception."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3 * 4 * 4, 16)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, pixels):
        pooled = torch.nn.functional.adaptive_avg_pool2d(pixels.float() / 255, 4)
        return self.proj(pooled.flatten(1))


@needs_fashion_mnist
def test_intra_fid_per_class(conditional_run, monkeypatch):
    from gans.evaluation import evaluate, fid as metrics, inception as inception_module

    # 16 features, not Inception's 2048: FID's matrix square root then takes no time.
    monkeypatch.setattr(metrics.FeaturesAsInput, "num_features", 16)
    monkeypatch.setattr(evaluate, "resolve_inception_weights",
                        lambda *_: SimpleNamespace(sha256="random-features"))
    monkeypatch.setattr(inception_module, "make_extractor", lambda *_: RandomFeatures())
    options = evaluate.EvalOptions(metrics=("intra_fid", "coverage"), num_fake=40, num_real=200,
                                   batch_size=40, use_cache=False, device="cpu")
    results = evaluate.evaluate(conditional_run, options)
    figure = results["intra_fid"]
    assert len(figure["per_class"]) == 10 and "Sneaker" in figure["per_class"]
    assert all(math.isfinite(v) for v in figure["per_class"].values())
    assert figure["value"] == pytest.approx(sum(figure["per_class"].values()) / 10)
    assert figure["per_class_images"]["Sneaker"]["num_fake"] == 4
    accuracy = results["class_coverage"]["conditional_accuracy"]
    assert set(accuracy) == set(figure["per_class"])
    assert all(0.0 <= v <= 1.0 for v in accuracy.values())


class RecordingFeatures(RandomFeatures):
    """RandomFeatures that keeps every image it is shown."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, pixels):
        self.seen.append(pixels.clone())
        return super().forward(pixels)


def fashion_mnist_test_labels():
    """Fashion-MNIST's test labels read from the idx file itself, not through gans.data."""
    with gzip.open(DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz") as f:
        data = f.read()
    assert int.from_bytes(data[:4], "big") == 2049  # the idx magic number of a label file
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8, offset=8).astype(np.int64))


@needs_fashion_mnist
def test_intra_fid_compares_each_class_with_its_own_real_images(learned_classes_run, monkeypatch):
    from torchmetrics.image.fid import FrechetInceptionDistance

    from gans.evaluation import evaluate, fid as metrics, inception as inception_module
    from gans.data import load_images
    from gans.sampling.checkpoint import load_generator

    monkeypatch.setattr(metrics.FeaturesAsInput, "num_features", 16)
    monkeypatch.setattr(evaluate, "resolve_inception_weights",
                        lambda *_: SimpleNamespace(sha256="random-features"))
    extractor = RecordingFeatures()
    monkeypatch.setattr(inception_module, "make_extractor", lambda *_: extractor)
    num_fake, num_real = 300, 3000  # a subset of the 10k test images: labels must follow it
    options = evaluate.EvalOptions(metrics=("intra_fid",), num_fake=num_fake, num_real=num_real,
                                   batch_size=num_fake, use_cache=False, device="cpu")
    # A model whose classes differ: a barely trained one draws near the same images for every
    # class, and a mix-up of generated classes would change no figure.
    figure = evaluate.evaluate(learned_classes_run, options)["intra_fid"]

    # The real images Inception was shown, labelled by finding each in the test split (its
    # 10k images are all distinct at 16 px) and reading the label file at that position.
    pixels = load_images(DataSection(name="fashion-mnist", resolution=16), split="test").pixels
    position = {image.numpy().tobytes(): i for i, image in enumerate(pixels)}
    assert len(position) == len(pixels)
    labels = fashion_mnist_test_labels()
    seen = torch.cat(extractor.seen)
    found = [position.get(image[:1].numpy().tobytes()) for image in seen]
    real = seen[[i is not None for i in found]]
    real_labels = labels[[i for i in found if i is not None]]
    assert len(real) == num_real

    # The generated images as documented: z from seed 0, every class in turn, quantized as a
    # PNG would be.
    generator, _, _ = load_generator(learned_classes_run)
    z = torch.randn(num_fake, generator.latent_dim, generator=torch.Generator().manual_seed(0))
    fake_labels = torch.arange(num_fake) % 10
    with torch.no_grad():
        fake = ((generator(z, fake_labels) + 1) * 127.5).round().clamp(0, 255)
    fake = fake.to(torch.uint8).expand(-1, 3, -1, -1)
    assert torch.equal(seen[[i is None for i in found]], fake), \
        "evaluate generated other images than z of seed 0 with every class in turn"

    features = RandomFeatures()
    features.load_state_dict(extractor.state_dict())
    for c, name in FASHION_MNIST_LABELS.items():
        fid = FrechetInceptionDistance(feature=features)
        fid.update(real[real_labels == c], real=True)
        fid.update(fake[fake_labels == c], real=False)
        assert figure["per_class"][name] == pytest.approx(fid.compute().item(), rel=1e-3), name
        assert figure["per_class_images"][name] == {"num_real": int((real_labels == c).sum()),
                                                   "num_fake": num_fake // 10}


def test_intra_fid_needs_a_conditional_checkpoint(trained_run, capsys):
    assert main(["eval", str(trained_run / "checkpoints" / "last.ckpt"),
                 "--metrics", "intra_fid", "--num-fake", "4"]) == 2
    assert "data.conditional" in capsys.readouterr().err


@needs_fashion_mnist
def test_interpolation_of_a_class_needs_and_takes_class(conditional_run, tmp_path, capsys):
    walk = tmp_path / "walk.gif"
    args = ["sample", str(conditional_run), "--interpolate", "--seeds", "0,1", "--frames", "3",
            "--out", str(walk)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "add --class" in err and "Sneaker" in err and len(err.strip().splitlines()) == 1
    assert main(args + ["--class", "sneaker"]) == 0
    assert Image.open(walk).n_frames == 6


@needs_fashion_mnist
def test_style_mixing_of_a_conditional_stylegan(tmp_path, capsys):
    raw = {
        "name": "sg-cond", "seed": 1,
        "model": {"generator": {"name": "stylegan-lite", "latent_dim": 8, "w_dim": 8,
                                "channel_base": 64, "channel_max": 8},
                  "discriminator": {"name": "stylegan-lite", "channel_base": 64,
                                    "channel_max": 8}},
        "data": {"name": "fashion-mnist", "resolution": 16, "channels": 1, "limit": 64,
                 "conditional": True},
        "train": {"steps": 2, "batch_size": 8, "sample_every": 2, "sample_grid": 4},
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
    }
    recipe = tmp_path / "sg.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["train", str(recipe), "--out", str(tmp_path / "runs")]) == 0
    ckpt = str(tmp_path / "runs" / "sg-cond" / "version_0" / "checkpoints" / "last.ckpt")
    mix = tmp_path / "mix.png"
    assert main(["sample", ckpt, "--style-mix", "--seeds", "1,2", "--class", "bag",
                 "--out", str(mix)]) == 0
    assert Image.open(mix).size == (3 * 16 + 4 * 2, 3 * 16 + 4 * 2)
    assert Image.open(mix).text["gans:class"] == "Bag"
    assert main(["sample", ckpt, "--style-mix", "--seeds", "1,2", "--per-class", "2",
                 "--out", str(mix)]) == 2
