
import pytest
import pytorch_lightning as pl
import torch

from conftest import tiny_recipe
from gans.training.datamodule import GANDataModule
from gans.training.module import GANModule, ramped_ema
from gans.recipe import validate


def snapshot(module):
    """Parameters only: BatchNorm statistics of D move in any forward pass in train mode."""
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before, after):
    return any(not torch.equal(before[k], after[k]) for k in before)


def fit(recipe_dict, steps, callbacks=()):
    recipe = validate(recipe_dict)
    module = GANModule(recipe.to_dict())
    dm = GANDataModule(recipe.data, recipe.train.batch_size, recipe.seed)
    trainer = pl.Trainer(max_steps=steps * (recipe.train.n_critic + 1), logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", callbacks=list(callbacks))
    return module, dm, trainer


@pytest.mark.parametrize("loss", ["non-saturating", "hinge", "least-squares", "wgan-gp"])
def test_one_step_changes_g_and_d_and_the_g_update_leaves_d_alone(tmp_path, image_folder, loss):
    raw = tiny_recipe(tmp_path, image_folder, steps=1)
    raw["loss"] = {"name": loss, "r1_gamma": 1.0 if loss == "non-saturating" else 0.0}
    if loss == "wgan-gp":
        raw["model"]["discriminator"]["norm"] = "none"
    module, dm, trainer = fit(raw, steps=1)
    g0, d0 = snapshot(module.generator), snapshot(module.discriminator)
    d_after_its_update = {}

    def remember_d(optimizer, args, kwargs):
        d_after_its_update.update(snapshot(module.discriminator))

    class Hook(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            trainer.optimizers[1].register_step_post_hook(remember_d)

    trainer.callbacks.append(Hook())
    trainer.fit(module, datamodule=dm)
    assert module.g_step == 1
    assert changed(g0, snapshot(module.generator))
    assert changed(d0, snapshot(module.discriminator))
    # The generator update ran after the D update: D must be exactly as that update left it.
    d_now = snapshot(module.discriminator)
    assert all(torch.equal(d_now[k], d_after_its_update[k]) for k in d_now)


def test_n_critic_counts_generator_steps(tmp_path, image_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tiny_recipe(tmp_path, image_folder, steps=3, n_critic=2)
    module, dm, trainer = fit(raw, steps=3)
    d_steps = []
    g_steps = []

    class Count(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            trainer.optimizers[0].register_step_post_hook(lambda *a: g_steps.append(1))
            trainer.optimizers[1].register_step_post_hook(lambda *a: d_steps.append(1))

    trainer.callbacks.append(Count())
    trainer.fit(module, datamodule=dm)
    assert (len(g_steps), len(d_steps)) == (3, 6)
    assert module.g_step == 3
    assert not (tmp_path / "samples").exists()  # no run directory, so no sample files


def test_ema_tracks_the_generator(tmp_path, image_folder):
    beta, steps = 0.9, 4
    raw = tiny_recipe(tmp_path, image_folder, steps=steps, ema=beta)
    module, dm, trainer = fit(raw, steps=steps)
    after_step = []  # the generator's weights after each of its updates

    class Hook(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            trainer.optimizers[0].register_step_post_hook(
                lambda *a: after_step.append(snapshot(module.generator)))

    trainer.callbacks.append(Hook())
    trainer.fit(module, datamodule=dm)
    assert len(after_step) == steps
    # By hand: the first update copies the generator; the n-th after it moves toward the
    # generator by 1 - decay, the decay ramping as (1 + n) / (10 + n) up to beta.
    expected = dict(after_step[0])
    for n, weights in enumerate(after_step[1:], start=1):
        decay = min(beta, (1 + n) / (10 + n))
        expected = {k: e + (1 - decay) * (weights[k] - e) for k, e in expected.items()}
    ema = dict(module.g_ema.module.named_parameters())
    for k in expected:
        assert torch.allclose(ema[k], expected[k], atol=1e-6), k
    # Far beyond that tolerance: an average left at the first copy, one that follows the
    # generator exactly, and one at the fixed decay beta from the start.
    fixed = dict(after_step[0])
    for weights in after_step[1:]:
        fixed = {k: e + (1 - beta) * (weights[k] - e) for k, e in fixed.items()}
    for other in (after_step[0], after_step[-1], fixed):
        assert max((other[k] - expected[k]).abs().max().item() for k in expected) > 1e-5
    assert module.sampling_generator is module.g_ema.module


def test_ramped_ema_by_hand():
    ema, current = [torch.zeros(2)], [torch.ones(2)]
    update = ramped_ema(0.999)
    update(ema, current, torch.tensor(1))  # decay (1 + 1) / (10 + 1)
    assert ema[0][0].item() == pytest.approx(1 - 2 / 11)
    late = [torch.zeros(1)]
    update(late, [torch.ones(1)], torch.tensor(10 ** 6))  # capped at beta
    assert late[0].item() == pytest.approx(0.001)
    counters = [torch.tensor(3)]
    update(counters, [torch.tensor(7)], torch.tensor(5))
    assert counters[0].item() == 7


def test_no_ema_samples_from_the_generator(tmp_path, image_folder):
    raw = tiny_recipe(tmp_path, image_folder, ema=0.0)
    module = GANModule(validate(raw).to_dict())
    assert module.g_ema is None and module.sampling_generator is module.generator


def test_ema_decay_takes_effect_only_after_the_warm_up_reaches_it():
    """docs/recipes.md: the ramp (1+n)/(10+n) caps `train.ema`, so a decay d acts only after
    (10d - 1)/(1 - d) steps (8,990 for 0.999)."""

    def averaged(beta: float, n: int) -> torch.Tensor:
        ema, current = [torch.zeros(3)], [torch.ones(3)]
        ramped_ema(beta)(ema, current, torch.tensor(n))
        return ema[0]

    assert torch.equal(averaged(0.9995, 10_000), averaged(0.9998, 10_000))
    assert torch.equal(averaged(0.999, 8_980), averaged(0.9995, 8_980))
    assert not torch.equal(averaged(0.999, 9_000), averaged(0.9995, 9_000))
    assert not torch.equal(averaged(0.9995, 18_000), averaged(0.9998, 18_000))


def test_a_smaller_ema_ramp_lets_a_long_decay_act_sooner():
    """docs/recipes.md: with `train.ema_ramp` r, a decay d acts after (r·d - 1)/(1 - d) steps:
    1,997 for 0.9995 at r = 2, against 17,990 at the default 10."""

    def averaged(beta: float, n: int, ramp: float) -> torch.Tensor:
        ema, current = [torch.zeros(3)], [torch.ones(3)]
        ramped_ema(beta, ramp)(ema, current, torch.tensor(n))
        return ema[0]

    assert torch.equal(averaged(0.9995, 10_000, 10.0), averaged(0.9998, 10_000, 10.0))
    assert not torch.equal(averaged(0.9995, 10_000, 2.0), averaged(0.9998, 10_000, 2.0))
    assert torch.equal(averaged(0.9995, 1_990, 2.0), averaged(0.9998, 1_990, 2.0))
    assert torch.allclose(averaged(0.9995, 2_000, 2.0), torch.full((3,), 0.0005), rtol=1e-6)
    # Without a ramp given, every earlier run's (1 + n)/(10 + n) holds: 501/510 at step 500.
    ema, current = [torch.zeros(3)], [torch.ones(3)]
    ramped_ema(0.999)(ema, current, torch.tensor(500))
    assert torch.allclose(ema[0], torch.full((3,), 1 - 501 / 510), rtol=1e-6)


@pytest.mark.parametrize("ramp, decay", [(2.0, 2 / 3), (10.0, 2 / 11)])
def test_the_recipes_ema_ramp_reaches_the_ema_generator(tmp_path, image_folder, ramp, decay):
    """`train.ema_ramp` is the ramp the module's EMA uses: at its second update (n = 1) the
    decay is (1 + 1)/(ramp + 1)."""
    raw = tiny_recipe(tmp_path, image_folder, ema=0.999, ema_ramp=ramp)
    module = GANModule(validate(raw).to_dict())
    weights = [p for p in module.generator.parameters()]
    with torch.no_grad():
        torch._foreach_zero_(weights)
        module.g_ema.update_parameters(module.generator)  # the first update copies
        torch._foreach_add_(weights, 1.0)
        module.g_ema.update_parameters(module.generator)
    for averaged in module.g_ema.module.parameters():
        assert torch.allclose(averaged, torch.full_like(averaged, 1 - decay), rtol=1e-6)


def test_standing_statistics_are_the_ema_generators_own_batch_statistics(tmp_path, image_folder):
    """`train.standing_statistics`: each BatchNorm of the EMA generator ends with the mean of
    the batch means (and batch variances) of its own inputs on the fixed latents, whatever
    its buffers held before, and the same latents at every refresh."""
    raw = tiny_recipe(tmp_path, image_folder, standing_statistics=20, batch_size=8)
    module = GANModule(validate(raw).to_dict())
    generator = module.g_ema.module
    with torch.no_grad():
        for weight in generator.parameters():
            weight.add_(0.3 * torch.randn_like(weight))
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    seen = {norm: [] for norm in norms}
    hooks = [norm.register_forward_hook(lambda m, inputs, _: seen[m].append(inputs[0]))
             for norm in norms]
    assert module.refresh_standing_statistics()
    for hook in hooks:
        hook.remove()
    for norm in norms:
        batches = seen[norm]
        assert [len(b) for b in batches] == [8, 8, 4]
        means = torch.stack([b.mean((0, 2, 3)) for b in batches])
        variances = torch.stack([b.var((0, 2, 3), unbiased=True) for b in batches])
        assert torch.allclose(norm.running_mean, means.mean(0), atol=1e-6)
        assert torch.allclose(norm.running_var, variances.mean(0), rtol=1e-5)
    first = [b.clone() for b in generator.buffers()]
    for norm in norms:
        norm.running_mean.fill_(5.0)
    module.refresh_standing_statistics()
    assert all(torch.equal(a, b) for a, b in zip(first, generator.buffers()))


def test_checkpoints_hold_standing_statistics_and_training_is_unchanged(tmp_path, image_folder):
    from gans.cli import main
    import yaml

    states = {}
    for count in (0, 24):
        raw = tiny_recipe(tmp_path, image_folder, steps=2, standing_statistics=count)
        recipe = tmp_path / f"standing-{count}.yaml"
        recipe.write_text(yaml.safe_dump(raw))
        assert main(["train", str(recipe), "--out", str(tmp_path / str(count))]) == 0
        states[count] = tmp_path / str(count) / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    plain, standing = (torch.load(states[c], weights_only=True)["state_dict"] for c in (0, 24))
    statistics = [k for k in plain if k.startswith("g_ema.") and "running_" in k]
    counters = [k for k in plain if k.startswith("g_ema.") and "num_batches_tracked" in k]
    assert statistics
    # The refresh touches the EMA copy's BatchNorm buffers only: training went the same way.
    assert all(torch.equal(plain[k], standing[k]) for k in plain
               if k not in statistics + counters)
    assert not any(torch.equal(plain[k], standing[k]) for k in statistics)
    # What the file holds is what the loaded EMA generator computes as its standing statistics.
    loaded = GANModule.load_from_checkpoint(states[24], map_location="cpu")
    with torch.no_grad():
        for name, buffer in loaded.g_ema.module.named_buffers():
            buffer.zero_()
    loaded.refresh_standing_statistics()
    recomputed = {f"g_ema.module.{n}": b for n, b in loaded.g_ema.module.named_buffers()}
    assert all(torch.allclose(standing[k], recomputed[k], atol=1e-6) for k in statistics)
