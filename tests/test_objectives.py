"""Objectives as named phases: the step runs what is due, a user's objective plugs in by dotted
path, RpGAN's penalties are what the paper says, and the refactoring changed no behaviour."""

from types import SimpleNamespace

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import random_images, tiny_recipe, train_recipe
from gans.cli import main
from gans.errors import GansError
from gans.objectives import losses
from gans.objectives.base import Objective, Phase, StepContext, due
from gans.recipe import validate
from gans.registry import OBJECTIVES


class MeanMatching(Objective):
    """A user's objective, defined here and named in a recipe by dotted path: non-saturating,
    plus a term pulling the fakes' mean image toward the reals' (a reconstruction-like term
    whose generator side needs the real images)."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight
        self.phases = [Phase("Dmain", "discriminator", self.d_main),
                       Phase("Gmain", "generator", self.g_main)]

    def d_main(self, ctx):
        real_logits, fake_logits = ctx.d_logits()
        return {"d_adversarial": losses.non_saturating_d(real_logits, fake_logits)}

    def g_main(self, ctx):
        return {"g_adversarial": losses.non_saturating_g(ctx.g_logits()),
                "mean_match": self.weight * (ctx.fake.mean(0) - ctx.real.mean(0)).square().mean()}


def scalars(run_dir, tag):
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [e.value for e in events.Scalars(tag)]


def train(tmp_path, raw):
    return train_recipe(raw, tmp_path, tmp_path / "runs")


def test_a_users_objective_plugs_in_by_dotted_path(tmp_path, image_folder):
    raw = tiny_recipe(tmp_path, image_folder, steps=3, log_every=1)
    raw["loss"] = {"name": "test_objectives.MeanMatching", "weight": 2.0}
    run_dir = train(tmp_path, raw)
    matched, adversarial = scalars(run_dir, "loss/mean_match"), scalars(run_dir, "loss/g_adversarial")
    assert len(matched) == 3 and all(v > 0 for v in matched)
    total = scalars(run_dir, "loss/generator")  # the generator was trained on the sum
    assert total == pytest.approx([a + m for a, m in zip(adversarial, matched)], rel=1e-5)
    resolved = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    assert resolved["loss"] == {"name": "test_objectives.MeanMatching", "weight": 2.0}


@pytest.mark.parametrize("loss, fragment", [
    ({"name": "test_objectives.MeanMatching", "wieght": 2.0},
     "unknown key 'loss.wieght'; allowed for MeanMatching: name, weight"),
    ({"name": "test_objectives.scalars"}, "not a gans objective"),
    ({"name": "rpgan", "gamma": -1}, "key 'loss.gamma' must not be negative"),
    ({"name": "rpgan", "pairs": "every"}, "key 'loss.pairs' must be one of index, all"),
    ({"name": "non-saturating", "r1_every": 0}, "key 'loss.r1_every' must be at least 1"),
    ({"name": "hinge", "pl_weight": 1.0}, "needs a style generator"),
    ({"name": "rpgan", "top_k": 0}, "key 'loss.top_k' must be the fraction of fakes kept, in (0, 1]"),
    ({"name": "hinge", "top_k": 1.5}, "key 'loss.top_k' must be the fraction of fakes kept"),
    ({"name": "rpgan-bcr", "top_k_kimg": -1}, "key 'loss.top_k_kimg' must not be negative"),
])
def test_bad_objective_keys_are_one_line_errors(tmp_path, loss, fragment):
    with pytest.raises(GansError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        validate({"loss": loss, "data": {"resolution": 16}})


def test_old_recipes_keep_their_loss_section_and_get_every_key():
    recipe = validate({"loss": {"name": "wgan-gp", "r1_gamma": 1, "r1_every": 4}})
    assert recipe.loss == {"name": "wgan-gp", "r1_gamma": 1, "r1_every": 4, "pl_weight": 0.0,
                           "pl_every": 4, "gp_weight": 10.0, "pl_through_mapping": False,
                           "top_k": 1.0, "top_k_kimg": 4000.0}
    assert validate({}).loss["name"] == "non-saturating"


def test_lazy_phases_run_every_kth_update_of_their_network():
    objective = OBJECTIVES.get("non-saturating")(r1_gamma=1.0, r1_every=4, pl_weight=0.0)
    r1 = next(p for p in objective.phases if p.name == "Dr1")
    assert [d for d in range(10) if due(r1, d)] == [0, 4, 8]
    rpgan = OBJECTIVES.get("rpgan")(gamma=0.1, reg_every=2)
    assert [(p.name, p.network, p.every) for p in rpgan.phases] == [
        ("Dmain", "discriminator", 1), ("Dreg", "discriminator", 2), ("Gmain", "generator", 1)]


class Quadratic(torch.nn.Module):
    """D(x) = sum(w * x^2): its input gradient 2 w x differs between reals and fakes, so a
    penalty taken on the wrong images, or with the wrong weight, shows."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0, 0.25]).view(1, 4, 1, 1))

    def forward(self, x, labels=None):
        return (self.w * x * x).flatten(1).sum(1)


def context(real, fake, input_grad, augment=lambda x: x, penalties_at="augmented",
            decay_left=1.0):
    module = SimpleNamespace(generator=None, discriminator=Quadratic(), augment=augment)
    return StepContext(module, real, None, None, None, fake, input_grad=frozenset(input_grad),
                       grad_through_augment=penalties_at == "original", decay_left=decay_left)


def test_rpgan_r1_and_r2_are_zero_centred_penalties_on_reals_and_on_fakes():
    real = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 1.0, 2.0]]).view(2, 4, 1, 1)
    fake = torch.tensor([[0.0, 1.0, -1.0, 3.0], [2.0, 1.0, 0.0, 0.0]]).view(2, 4, 1, 1)
    w = torch.tensor([0.5, -1.0, 2.0, 0.25]).view(1, 4, 1, 1)

    def by_hand(x):  # mean over images of ||2 w x||^2
        return (2 * w * x).square().flatten(1).sum(1).mean().item()

    gamma, every = 0.3, 2
    objective = OBJECTIVES.get("rpgan")(gamma=gamma, reg_every=every)
    terms = objective.d_reg(context(real, fake, ("real", "fake")))
    assert terms["r1"].item() == pytest.approx(gamma / 2 * every * by_hand(real))
    assert terms["r2"].item() == pytest.approx(gamma / 2 * every * by_hand(fake))
    assert by_hand(real) != pytest.approx(by_hand(fake))

    ctx = context(real, fake, ())
    real_logits, fake_logits = ctx.d_logits()
    d = objective.d_main(ctx)["d_adversarial"].item()
    assert d == pytest.approx(torch.nn.functional.softplus(fake_logits - real_logits).mean().item())
    g = objective.g_main(ctx)["g_adversarial"].item()
    assert g == pytest.approx(torch.nn.functional.softplus(real_logits - fake_logits).mean().item())


@pytest.mark.parametrize("decay_left, expected_scale", [(1.0, 1.0), (0.5, 0.55), (0.0, 0.1)])
def test_rpgan_gamma_follows_the_learning_rate_schedule(decay_left, expected_scale):
    real = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 1.0, 2.0]]).view(2, 4, 1, 1)
    fake = torch.tensor([[0.0, 1.0, -1.0, 3.0], [2.0, 1.0, 0.0, 0.0]]).view(2, 4, 1, 1)
    constant = OBJECTIVES.get("rpgan")(gamma=0.3)
    decaying = OBJECTIVES.get("rpgan")(gamma=0.3, final_gamma_scale=0.1)
    ctx = lambda: context(real, fake, ("real", "fake"), decay_left=decay_left)  # noqa: E731
    full, scaled = constant.d_reg(ctx()), decaying.d_reg(ctx())
    for term in ("r1", "r2"):
        assert scaled[term].item() == pytest.approx(expected_scale * full[term].item())
    assert decaying.logged()["loss/gamma"] == pytest.approx(0.3 * expected_scale)
    assert "loss/gamma" not in constant.logged()
    assert "to 0.03 on the schedule" in decaying.describe()


def test_a_gamma_decay_needs_a_learning_rate_schedule(tmp_path, image_folder):
    raw = tiny_recipe(tmp_path, image_folder)
    raw["model"]["discriminator"]["norm"] = "none"
    raw["loss"] = {"name": "rpgan", "gamma": 0.1, "final_gamma_scale": 0.1}
    with pytest.raises(GansError, match="loss.final_gamma_scale.*optim.schedule is constant"):
        validate(raw, "recipe.yaml")
    raw["optim"] = {"schedule": "linear", "decay_start": 0.5}
    assert validate(raw, "recipe.yaml").loss["final_gamma_scale"] == 0.1
    raw["loss"]["final_gamma_scale"] = 1.5
    with pytest.raises(GansError, match=r"final_gamma_scale.*\[0, 1\]"):
        validate(raw, "recipe.yaml")


def test_a_run_logs_its_gamma_along_the_decay(tmp_path, image_folder):
    raw = tiny_recipe(tmp_path, image_folder, steps=4, log_every=1)
    raw["model"]["discriminator"]["norm"] = "none"
    raw["loss"] = {"name": "rpgan", "gamma": 1.0, "final_gamma_scale": 0.2}
    raw["optim"] = {"schedule": "linear", "decay_start": 0.5, "final_lr_scale": 0.5}
    gammas = scalars(train(tmp_path, raw), "loss/gamma")
    # Steps 0-3 of 4: progress 0, 0.25, 0.5 (the decay's start), then 0.75, half-way down.
    assert gammas == pytest.approx([1.0, 1.0, 1.0, 0.6])


def test_rpgan_with_all_pairs_scores_every_real_against_every_fake():
    real = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 1.0, 2.0]]).view(2, 4, 1, 1)
    fake = torch.tensor([[0.0, 1.0, -1.0, 3.0], [2.0, 1.0, 0.0, 0.0]]).view(2, 4, 1, 1)
    ctx = context(real, fake, ())
    (r0, r1), (f0, f1) = [t.tolist() for t in ctx.d_logits()]
    softplus = lambda x: torch.nn.functional.softplus(torch.tensor(x)).item()  # noqa: E731
    pairs = [(r0, f0), (r0, f1), (r1, f0), (r1, f1)]

    objective = OBJECTIVES.get("rpgan")(pairs="all")
    d = objective.d_main(ctx)["d_adversarial"].item()
    g = objective.g_main(ctx)["g_adversarial"].item()
    assert d == pytest.approx(sum(softplus(f - r) for r, f in pairs) / 4)
    assert g == pytest.approx(sum(softplus(r - f) for r, f in pairs) / 4)
    by_index = OBJECTIVES.get("rpgan")().d_main(ctx)["d_adversarial"].item()
    assert by_index == pytest.approx((softplus(f0 - r0) + softplus(f1 - r1)) / 2)
    assert d != pytest.approx(by_index)
    assert "all pairs" in objective.describe()


def test_rpgan_can_reuse_the_real_logits_of_the_discriminator_update():
    """`loss.reuse_real_logits`: the generator's loss compares each fake, scored by the
    updated D, with its real as D scored it before its update; by default D scores it again."""
    real = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 1.0, 2.0]]).view(2, 4, 1, 1)
    fake = torch.tensor([[0.0, 1.0, -1.0, 3.0], [2.0, 1.0, 0.0, 0.0]]).view(2, 4, 1, 1)
    softplus = torch.nn.functional.softplus
    losses = {}
    for reuse in (False, True):
        ctx = context(real, fake, ())
        objective = OBJECTIVES.get("rpgan")(reuse_real_logits=reuse)
        objective.d_main(ctx)
        before = ctx.d_logits()[0].detach().clone()
        with torch.no_grad():
            ctx.discriminator.w.mul_(-2.0)  # the discriminator's update
        scores = ctx.discriminator
        g = objective.g_main(ctx)["g_adversarial"]
        real_logits = before if reuse else scores(real)
        assert g.item() == pytest.approx(softplus(real_logits - scores(fake)).mean().item())
        losses[reuse] = g.item()
    assert losses[True] != pytest.approx(losses[False])
    assert "real logits of the D update" in OBJECTIVES.get("rpgan")(
        reuse_real_logits=True).describe()


def test_reusing_the_real_logits_saves_one_discriminator_forward_per_step(tmp_path, image_folder):
    from gans.training.module import GANModule

    calls = {}
    for reuse in (False, True):
        raw = tiny_recipe(tmp_path, image_folder, steps=2, log_every=1)
        raw["loss"] = {"name": "rpgan", "gamma": 0.1, "reuse_real_logits": reuse}
        raw["model"]["discriminator"]["norm"] = "none"
        raw["name"] = f"reuse-{reuse}"
        module = GANModule(validate(raw).to_dict())
        forwards = []
        module.discriminator.register_forward_hook(lambda m, args, out: forwards.append(1))
        train_module(tmp_path / str(reuse), raw, module)
        calls[reuse] = len(forwards)
    assert calls[False] == 2 * 4 and calls[True] == 2 * 3  # reals, fakes; fakes, reals for G


def test_top_k_learns_from_the_fakes_the_discriminator_scores_highest():
    """Sinha et al. 2020: the generator's loss keeps the k fakes D rates most real (here k = 2
    of 4) and the reals paired with them; the dropped fakes get no gradient."""
    real = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 1.0, 2.0],
                         [0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]]).view(4, 4, 1, 1)
    fake = torch.tensor([[0.0, 1.0, -1.0, 3.0], [2.0, 1.0, 0.0, 0.0],
                         [0.0, 0.0, 2.0, 0.0], [1.0, 0.0, 0.0, 1.0]]).view(4, 4, 1, 1)
    softplus = torch.nn.functional.softplus
    for name, by_hand in (("rpgan", lambda r, f: softplus(r - f).mean()),
                          ("non-saturating", lambda r, f: softplus(-f).mean())):
        leaf = fake.clone().requires_grad_(True)
        ctx = context(real, leaf, ())
        real_logits, fake_logits = (t.detach() for t in ctx.d_logits())
        kept = fake_logits.argsort(descending=True)[:2]
        assert sorted(kept.tolist()) == [0, 2]  # scores 3.25, 1, 8 and 0.75
        objective = OBJECTIVES.get(name)(top_k=0.5, top_k_kimg=0)
        g = objective.g_main(ctx)["g_adversarial"]
        assert g.item() == pytest.approx(by_hand(real_logits[kept], fake_logits[kept]).item())
        everything = OBJECTIVES.get(name)().g_main(context(real, fake, ()))["g_adversarial"]
        assert g.item() != pytest.approx(everything.item())
        g.backward()
        reached = leaf.grad.flatten(1).abs().sum(1) > 0
        assert reached.tolist() == [True, False, True, False], name
        assert "top-k to 0.5 of the fakes" in objective.describe()
        assert objective.logged() == {"loss/top_k_fraction": 0.5}


def test_top_k_keeps_every_fake_at_first_then_falls_to_its_floor():
    from gans.objectives.base import TopK

    schedule = TopK(0.5, 600)
    assert [schedule.fraction(k) for k in (0, 300, 600, 1200)] == [1.0, 0.75, 0.5, 0.5]
    logits = torch.arange(64.0)
    assert len(schedule.kept(logits, 0)) == 64
    assert sorted(schedule.kept(logits, 300).tolist()) == list(range(16, 64))
    assert TopK().kept(logits, 10_000) is None and not TopK().active  # 1 keeps every fake


def test_top_k_trains_and_logs_the_fraction_it_kept(tmp_path, image_folder):
    raw = tiny_recipe(tmp_path, image_folder, steps=4, log_every=1)
    raw["model"]["discriminator"]["norm"] = "none"
    # Batches of 8 (0.008 kimg): a quarter less per batch, to its floor from the third step on.
    raw["loss"] = {"name": "rpgan", "gamma": 0.1, "top_k": 0.5, "top_k_kimg": 0.016}
    run_dir = train(tmp_path, raw)
    assert scalars(run_dir, "loss/top_k_fraction") == pytest.approx([1.0, 0.75, 0.5, 0.5])
    assert all(v == v for v in scalars(run_dir, "loss/g_adversarial"))


def test_penalties_at_the_original_images_differentiate_through_the_augmentation():
    real = torch.tensor([[1.0, 2.0, 0.0, -1.0]]).view(1, 4, 1, 1)
    w = torch.tensor([0.5, -1.0, 2.0, 0.25]).view(1, 4, 1, 1)
    objective = OBJECTIVES.get("non-saturating")(r1_gamma=2.0)
    # D(a(x)) with a(x) = 3x: the gradient at a(x) is 2 w a(x); at x it is 3 times that.
    seen = context(real, real, ("real",), augment=lambda x: 3 * x)
    through = context(real, real, ("real",), augment=lambda x: 3 * x, penalties_at="original")
    at_seen = objective.d_r1(seen)["r1"].item()
    at_original = objective.d_r1(through)["r1"].item()
    assert at_seen == pytest.approx((2 * w * 3 * real).square().sum().item())
    assert at_original == pytest.approx(9 * at_seen)


def test_fresh_latents_give_the_generator_update_its_own_forward(tmp_path, image_folder):
    from gans.training.module import GANModule

    counts = {}
    for fresh in (False, True):
        raw = tiny_recipe(tmp_path, image_folder, steps=2, log_every=1, g_fresh_latents=fresh)
        module = GANModule(validate(raw).to_dict())
        calls = []
        module.generator.register_forward_hook(lambda m, args, out: calls.append(args[0]))
        raw["name"] = f"fresh-{fresh}"
        train_module(tmp_path / str(fresh), raw, module)
        counts[fresh] = calls
    assert len(counts[False]) == 2 and len(counts[True]) == 4  # per step: D's, then G's own
    assert not torch.equal(counts[True][0], counts[True][1])


def train_module(out, raw, module):
    import pytorch_lightning as pl

    from gans.recipe import validate as check
    from gans.training.datamodule import GANDataModule

    recipe = check(raw)
    trainer = pl.Trainer(max_steps=recipe.train.steps * 2, accelerator="cpu", devices=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(module, datamodule=GANDataModule(recipe.data, recipe.train.batch_size))


@pytest.mark.parametrize("through", [False, True])
def test_path_length_reaches_the_mapping_network_only_when_asked(through):
    from gans.models.stylegan_lite import StyleGANLiteGenerator

    torch.manual_seed(0)
    generator = StyleGANLiteGenerator(latent_dim=8, w_dim=8, mapping_layers=1, channel_base=64,
                                      channel_max=8, resolution=16, channels=3)
    module = SimpleNamespace(generator=generator, discriminator=None, augment=lambda x: x,
                             latents=lambda n: torch.randn(n, 8), fake_labels=lambda n: None)
    ctx = StepContext(module, torch.zeros(4, 3, 16, 16), None, None, None, None)
    objective = OBJECTIVES.get("non-saturating")(pl_weight=1.0, pl_every=1,
                                                  pl_through_mapping=through)
    objective.pl_mean.fill_(0.5)  # so the penalty's gradient is not zero at the start
    objective.g_path_length(ctx)["path_length"].backward()
    mapping = [p.grad for name, p in generator.named_parameters() if name.startswith("mapping_net")]
    synthesis = [p.grad for name, p in generator.named_parameters()
                 if not name.startswith("mapping_net") and p.grad is not None]
    assert synthesis and any(g.abs().sum() > 0 for g in synthesis)
    reached = any(g is not None and g.abs().sum() > 0 for g in mapping)
    assert reached == through


@pytest.mark.parametrize("pack", [1, 2])
def test_rpgan_trains_a_few_steps_with_r1_and_r2(tmp_path, image_folder, pack):
    raw = tiny_recipe(tmp_path, image_folder, steps=3, log_every=1)
    raw["model"]["discriminator"].update(norm="none", pack=pack)
    raw["loss"] = {"name": "rpgan", "gamma": 1.0}
    run_dir = train(tmp_path, raw)
    for tag in ("loss/r1", "loss/r2", "loss/d_adversarial", "loss/g_adversarial"):
        values = scalars(run_dir, tag)
        assert len(values) == 3 and all(v == v and v >= 0 for v in values), tag
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state["discriminator.net.0.weight"].shape[1] == 3 * pack  # RGB images per logit


# ----------------------------------------------------------------------------- behaviour pin

# Losses logged at generator steps 1-6 by the training step as it was before objectives
# existed (commit 99af2c4, the hand-written step), on the reference machine in float32. The
# objectives must reproduce them: a change here is a change of the algorithm, not of its
# layout. The tolerance leaves room for other CPUs' rounding, not for a different algorithm.
PINNED = {
    "ns-r1-augment": {
        "loss": {"name": "non-saturating", "r1_gamma": 1.0, "r1_every": 2},
        "augment": {"policy": ["color", "translation", "cutout"], "p": 0.5},
        "loss/discriminator": [1.5577058, 1.3691101, 1.6166325, 1.4047399, 1.5110753, 1.3836799],
        "loss/g_adversarial": [0.7788129, 0.7453439, 0.7940913, 0.7072718, 0.7561421, 0.7215306],
    },
    "wgan-gp-ncritic2": {
        "loss": {"name": "wgan-gp"}, "train": {"n_critic": 2},
        "loss/discriminator": [1.320112, 1.1995922, 0.6629726, 0.5327611, 0.2240051, 0.7089843],
        "loss/g_adversarial": [0.0819413, 0.095539, 0.0916065, 0.0552444, 0.0777527, 0.0114654],
    },
    "stylegan-pl-r1": {
        "model": {"generator": {"name": "stylegan-lite", "latent_dim": 16, "w_dim": 16,
                                "mapping_layers": 1, "channel_base": 64, "channel_max": 16,
                                "style_mixing": 0.9},
                  "discriminator": {"name": "stylegan-lite", "channel_base": 64,
                                    "channel_max": 16, "mbstd_group": 4}},
        "loss": {"name": "non-saturating", "r1_gamma": 0.5, "r1_every": 4, "pl_weight": 2.0,
                 "pl_every": 2},
        "optim": {"generator": {"lr": 2.5e-3, "betas": [0.0, 0.99]},
                  "discriminator": {"lr": 2.5e-3, "betas": [0.0, 0.99]}},
        "loss/discriminator": [1.432534, 1.4115583, 1.4926589, 1.4306843, 1.4002893, 1.4503555],
        "loss/g_adversarial": [0.7754505, 0.7679533, 0.7072824, 0.7295735, 0.8228201, 0.7179485],
    },
}


@pytest.mark.parametrize("case", list(PINNED))
def test_the_first_steps_reproduce_the_losses_recorded_before_objectives(tmp_path, case):
    folder = random_images(tmp_path / "images", 32)
    raw = {"name": "pin", "seed": 3,
           "model": {"generator": {"name": "dcgan", "latent_dim": 8, "width": 8},
                     "discriminator": {"name": "dcgan", "width": 8}},
           "data": {"name": "folder", "root": str(folder), "resolution": 16, "channels": 3},
           "train": {"steps": 6, "batch_size": 8, "checkpoint_every": 100, "sample_every": 100,
                     "sample_grid": 4, "log_every": 1},
           "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
                       "precision": "32-true"}}
    expected = PINNED[case]
    for section in ("model", "loss", "augment", "optim", "train"):
        if section in expected:
            raw[section] = {**raw.get(section, {}), **expected[section]}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as recorded: the sums' order, hence their rounding, is fixed
    try:
        run_dir = train(tmp_path, raw)
    finally:
        torch.set_num_threads(threads)
    for tag in ("loss/discriminator", "loss/g_adversarial"):
        assert scalars(run_dir, tag) == pytest.approx(expected[tag], abs=1e-5), tag


def test_a_checkpoint_from_before_objectives_resumes(trained_run, tmp_path):
    """Checkpoints written before objectives kept the path-length mean at the top level."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    path = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(path, weights_only=True)
    state = ckpt["state_dict"]
    state["pl_mean"] = state.pop("objective.pl_mean").fill_(0.25)
    torch.save(ckpt, path)
    assert main(["train", "--resume", str(run), "--set", "train.steps=22"]) == 0
    resumed = torch.load(path, weights_only=True)["state_dict"]
    assert "pl_mean" not in resumed and resumed["objective.pl_mean"].item() == 0.25


def test_the_recipe_chooses_where_penalties_take_their_gradient(tmp_path, image_folder):
    """augment.penalties_at reaches the step: R1 through a colour augmentation differs from R1
    at the augmented images from the very first step (same seed, same draws)."""
    first_r1 = {}
    for where in ("augmented", "original"):
        raw = tiny_recipe(tmp_path / where, image_folder, steps=1, log_every=1)
        raw["loss"] = {"name": "non-saturating", "r1_gamma": 1.0}
        raw["augment"] = {"policy": ["color"], "p": 1.0, "penalties_at": where}
        (tmp_path / where).mkdir()
        first_r1[where] = scalars(train(tmp_path / where, raw), "loss/r1")[0]
    assert first_r1["augmented"] != pytest.approx(first_r1["original"], rel=1e-3)
