"""R3GAN-lite: shapes at every size it supports, the paper's initialisation, no normalization,
training with RpGAN + R1 + R2 through `gans train`, bit-exact resume, one-line key errors."""

import math

import pytest
import torch
import yaml

from conftest import tiny_recipe
from gans.cli import main
from gans.errors import GansError
from gans.models.r3gan_lite import R3GANLiteDiscriminator, R3GANLiteGenerator, ResidualBlock
from gans.recipe import load_recipe

SMALL = {"channel_base": 128, "channel_max": 32, "group_width": 8}


def small_pair(**kw):
    torch.manual_seed(0)
    return (R3GANLiteGenerator(latent_dim=16, **SMALL, **kw),
            R3GANLiteDiscriminator(**SMALL, **kw))


@pytest.mark.parametrize("resolution", [16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_shapes(resolution, channels, num_classes):
    g, d = small_pair(channels=channels, resolution=resolution, num_classes=num_classes)
    labels = torch.arange(5) % 10 if num_classes else None
    images = g(torch.randn(5, 16), labels)
    assert images.shape == (5, channels, resolution, resolution)
    assert torch.isfinite(images).all()
    assert d(images, labels).shape == (5,)


# The default recipe's networks (recipes/r3gan-lite/fashion-mnist.yaml: 32x32 grayscale). A change
# of the architecture or of the defaults changes these: update them deliberately, with
# docs/models.md's figures (python -c 'from gans.models.r3gan_lite import compare_with_dcgan
# as c; c()').
DEFAULT_PARAMETERS = {"generator": 178_128, "discriminator": 170_064}


def test_parameter_count_of_the_default_recipe_is_pinned():
    recipe = load_recipe("recipes/r3gan-lite/fashion-mnist.yaml")
    data = {"channels": recipe.data.channels, "resolution": recipe.data.resolution}
    for net, cls in (("generator", R3GANLiteGenerator), ("discriminator", R3GANLiteDiscriminator)):
        spec = {k: v for k, v in getattr(recipe.model, net).items() if k != "name"}
        count = sum(p.numel() for p in cls(**data, **spec).parameters())
        assert count == DEFAULT_PARAMETERS[net], net
        assert count == sum(p.numel() for p in cls(**data).parameters())  # recipe = defaults


def test_residual_blocks_start_as_the_identity_with_depth_scaled_gains():
    g, d = small_pair(resolution=32, blocks_per_stage=2)
    depth = 2 * 4  # blocks in each network: 2 per stage at 4, 8, 16, 32 px
    for net in (g, d):
        blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
        assert len(blocks) == depth
        for block in blocks:
            x = torch.randn(3, block.expand.in_channels, 8, 8)
            assert torch.equal(block(x), x)  # the branch's last layer is zero
            assert not torch.equal(block.expand(x), torch.zeros_like(block.expand(x)))
    # Fix-up: the branch's other layers get He's gain times L^(-1/(2m-2)), m = 3 layers.
    torch.manual_seed(0)
    wide = ResidualBlock(256, 2, 16, depth=16, key="k")
    expected = math.sqrt(2.0) * 16 ** -0.25
    for conv in (wide.expand, wide.spatial):
        measured = conv.weight.std().item() * math.sqrt(conv.weight[0].numel())
        assert measured == pytest.approx(expected, rel=0.03)


def test_no_normalization_anywhere_and_each_logit_depends_on_its_image_alone():
    g, d = small_pair(channels=3, resolution=32, num_classes=10)
    norms = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm,
             torch.nn.LocalResponseNorm)
    for net in (g, d):
        assert not [m for m in net.modules() if isinstance(m, norms)]
        assert not [n for n, _ in net.named_parameters() if "parametrizations" in n]
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([1, 2, 3, 4])
    both = d(images, labels)
    assert torch.allclose(both[:1], d(images[:1], labels[:1]), atol=1e-6)
    assert not torch.allclose(both[:1], d(images[:1], labels[1:2]), atol=1e-6)  # the class counts


def test_conditional_networks_need_labels():
    g, d = small_pair(num_classes=10)
    with pytest.raises(GansError, match="labels"):
        g(torch.randn(2, 16))
    with pytest.raises(GansError, match="labels"):
        d(torch.randn(2, 1, 32, 32))


@pytest.mark.parametrize("kwargs, key", [
    ({"resolution": 48}, "data.resolution"),
    ({"resolution": 8}, "data.resolution"),
    ({"channel_base": -64}, "model.generator.channel_base"),
    ({"channel_max": 0}, "model.generator.channel_max"),
    ({"blocks_per_stage": 0}, "model.generator.blocks_per_stage"),
    ({"expansion": -1}, "model.generator.expansion"),
    ({"group_width": 0}, "model.generator.group_width"),
    ({"channel_base": 384, "group_width": 10}, "model.generator.group_width"),
])
def test_bad_keys_are_one_line_errors_naming_the_key(kwargs, key):
    with pytest.raises(GansError) as caught:
        R3GANLiteGenerator(**kwargs)
    message = str(caught.value)
    assert message.startswith(key) and "\n" not in message
    if key.startswith("model."):
        with pytest.raises(GansError, match=key.replace("generator", "discriminator")):
            R3GANLiteDiscriminator(**kwargs)


def r3gan_recipe(tmp_path, image_folder, **train):
    raw = tiny_recipe(tmp_path, image_folder, **train)
    raw["name"] = "r3"
    raw["model"] = {"generator": {"name": "r3gan-lite", "latent_dim": 8, **SMALL},
                    "discriminator": {"name": "r3gan-lite", **SMALL}}
    raw["loss"] = {"name": "rpgan", "gamma": 0.05, "reg_every": 1}
    raw["optim"] = {"generator": {"lr": 2.0e-4, "betas": [0.0, 0.99]},
                    "discriminator": {"lr": 2.0e-4, "betas": [0.0, 0.99]}}
    raw["train"]["ema"] = 0.9
    return raw


def train(tmp_path, raw, out, *overrides):
    path = tmp_path / f"{out}.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path), "--out", str(tmp_path / out), *overrides]) == 0
    return tmp_path / out / raw["name"] / "version_0"


def test_trains_five_steps_with_r1_and_r2(tmp_path, image_folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = train(tmp_path, r3gan_recipe(tmp_path, image_folder, steps=5), "runs")
    events = EventAccumulator(str(run_dir))
    events.Reload()
    for tag in ("loss/r1", "loss/r2", "loss/d_adversarial", "loss/g_adversarial"):
        values = [e.value for e in events.Scalars(tag)]
        assert len(values) == 5 and all(math.isfinite(v) and v >= 0 for v in values), tag
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    projections = [v for k, v in state.items()
                   if k.startswith("generator.") and k.endswith("project.weight")]
    assert projections and all(v.abs().sum() > 0 for v in projections)  # branches came alive


class Crash(Exception):
    pass


def test_a_crashed_and_resumed_run_is_bit_identical_to_an_uninterrupted_one(
        tmp_path, image_folder, monkeypatch):
    """4 steps straight against 2, a crash, and 2 more from the checkpoint written at step 2
    (mid-epoch: 40 images in batches of 8), with R1, R2 and EMA on."""
    from gans.training.module import GANModule

    raw = r3gan_recipe(tmp_path, image_folder, steps=4, checkpoint_every=2)
    straight = torch.load(train(tmp_path, raw, "straight") / "checkpoints" / "last.ckpt",
                          weights_only=True)

    original = GANModule.on_train_batch_end

    def crash_at_step_2(self, *args):
        original(self, *args)
        if self.g_step == 2:  # after the step's checkpoint, as a crash would come
            raise Crash()

    monkeypatch.setattr(GANModule, "on_train_batch_end", crash_at_step_2)
    with pytest.raises(Crash):
        train(tmp_path, raw, "crashed")
    monkeypatch.setattr(GANModule, "on_train_batch_end", original)
    run_dir = tmp_path / "crashed" / raw["name"] / "version_0"
    assert torch.load(run_dir / "checkpoints" / "last.ckpt",
                      weights_only=True)["global_step"] == 2 * 2
    assert main(["train", "--resume", str(run_dir)]) == 0
    resumed = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)

    assert resumed["global_step"] == straight["global_step"] == 2 * 4
    assert resumed["state_dict"].keys() == straight["state_dict"].keys()
    differ = [k for k, v in straight["state_dict"].items()
              if not torch.equal(v, resumed["state_dict"][k])]
    assert not differ, differ  # G, D and the EMA generator
    for mine, theirs in zip(resumed["optimizer_states"], straight["optimizer_states"]):
        for key, state in theirs["state"].items():
            assert all(torch.equal(state[n], mine["state"][key][n]) for n in state)


def test_a_bad_key_stops_gans_train_in_one_line(tmp_path, image_folder, capsys):
    raw = r3gan_recipe(tmp_path, image_folder)
    raw["model"]["discriminator"]["channel_base"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.discriminator.channel_base" in err and len(err.splitlines()) == 1
