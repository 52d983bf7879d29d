"""GANModule: the adversarial training step as a LightningModule with manual optimization.

One batch is one discriminator update; every `train.n_critic`-th batch also updates the
generator. Lightning's `global_step` counts optimizer steps of both networks, so
`global_step = generator_steps * (n_critic + 1)` at every generator-step boundary; `g_step`
reads the generator count from it, which makes it survive a resume with no state of its own.

Under several processes (docs/distributed.md) every rank runs this same step on its own shard
of the data and its own latents; the strategy averages each phase's gradients over ranks, so the
networks stay identical and the update equals one process with the whole global batch.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from gans.objectives import losses
from gans.objectives.augment import Augment
from gans.data import class_names
from gans.errors import GansError
from gans.recipe import Recipe, validate
from gans.registry import DISCRIMINATORS, GENERATORS, LOSSES


def build_networks(recipe: Recipe) -> tuple[nn.Module, nn.Module]:
    data = {"channels": recipe.data.channels, "resolution": recipe.data.resolution}
    num_classes = len(class_names(recipe.data))
    if num_classes:  # unconditional networks keep their signature, so plugged-in ones still build
        data["num_classes"] = num_classes
    g_spec, d_spec = dict(recipe.model.generator), dict(recipe.model.discriminator)
    generator = GENERATORS.get(g_spec.pop("name"))(**data, **g_spec)
    discriminator = DISCRIMINATORS.get(d_spec.pop("name"))(**data, **d_spec)
    return generator, discriminator


def ramped_ema(beta: float):
    """EMA whose decay ramps up as (1 + n) / (10 + n) toward `beta`.

    A fixed decay of 0.999 would keep the random initial weights in the average for thousands
    of steps; the ramp lets a short run's EMA generator follow training from the start.
    """

    def update(ema: list, current: list, num_averaged: torch.Tensor) -> None:
        if not ema[0].is_floating_point():  # BatchNorm's step counters: take the current value
            torch._foreach_copy_(ema, current)
            return
        n = float(num_averaged)
        decay = min(beta, (1.0 + n) / (10.0 + n))
        torch._foreach_lerp_(ema, current, 1.0 - decay)

    return update


def adam_kernels(optim) -> dict:
    """Adam's keyword arguments for `optim.implementation` (the update is the same maths)."""
    return {"for-loop": {"foreach": False, "fused": False},
            "foreach": {"foreach": True, "fused": False},
            "fused": {"foreach": False, "fused": True}}[optim.implementation]


class TrainingDiverged(GansError):
    """A loss or gradient became NaN or infinite; nothing non-finite reached the weights.
    `checkpoint`: the last good checkpoint to roll back to, when there is one."""

    checkpoint: Optional[Path] = None


def noise_seed(seed: int, rank: int, step: int) -> int:
    """The seed of a rank's latents for one batch, from the recipe seed, the global rank and
    the step."""
    digest = hashlib.sha256(f"gans-latents/{seed}/{rank}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2 ** 63 - 1)


class GANModule(pl.LightningModule):
    def __init__(self, recipe: dict):
        super().__init__()
        self.recipe = validate(recipe, source="checkpoint recipe")
        self.class_names = list(class_names(self.recipe.data))
        # The class names travel with the checkpoint, so `gans sample --class` maps names to
        # the indices this run trained with.
        self.save_hyperparameters({"recipe": recipe, "class_names": self.class_names})
        self.generator, self.discriminator = build_networks(self.recipe)
        if self.recipe.train.channels_last:  # before the EMA copy, so that it shares the layout
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self.loss = LOSSES.get(self.recipe.loss.name)
        augment = self.recipe.augment
        start_p = augment.p if augment.p is not None else (
            0.0 if augment.ada_target is not None else 1.0)
        self.augment = Augment(augment.policy, start_p, augment.ada_target,
                               augment.ada_interval, augment.ada_kimg)
        self.register_buffer("pl_mean", torch.zeros(()))  # running mean of the path lengths
        self.automatic_optimization = False
        train = self.recipe.train
        self.g_ema: Optional[AveragedModel] = None
        if train.ema > 0:
            self.g_ema = AveragedModel(self.generator, multi_avg_fn=ramped_ema(train.ema),
                                       use_buffers=True)
            self.g_ema.requires_grad_(False)
        if train.compile:
            # Module.compile keeps the modules and their state_dict keys as they are (no
            # `_orig_mod.` prefix), so checkpoints load uncompiled in `gans sample` and `eval`.
            # The EMA copy was made before, and stays eager: it runs only for samples and FID.
            self.generator.compile()
            self.discriminator.compile()
        seeded = torch.Generator().manual_seed(self.recipe.seed)
        self.register_buffer("fixed_z", torch.randn(train.sample_grid, self.generator.latent_dim,
                                                    generator=seeded), persistent=False)
        self.register_buffer("fixed_labels", self.grid_labels(train.sample_grid), persistent=False)
        self.noise: Optional[torch.Generator] = None  # this rank's latent stream; see latents()
        self._images_at_last_log = 0
        self._time_at_last_log: Optional[float] = None

    # ------------------------------------------------------------------ counters

    @property
    def g_step(self) -> int:
        """Generator updates done so far."""
        return self.trainer.global_step // (self.recipe.train.n_critic + 1)

    @property
    def d_step(self) -> int:
        """Discriminator updates done so far (read at the start of a batch)."""
        return self.trainer.global_step - self.g_step

    @property
    def images_seen(self) -> int:
        """Real images shown to the discriminator, summed over all processes."""
        return (self.trainer.global_step * self.recipe.train.n_critic
                // (self.recipe.train.n_critic + 1)) * self.recipe.train.batch_size * \
            self.trainer.world_size

    @property
    def sampling_generator(self) -> nn.Module:
        """The network to sample from: the EMA copy when there is one."""
        return self.g_ema.module if self.g_ema is not None else self.generator

    # ------------------------------------------------------------------ latents

    def on_train_start(self) -> None:
        # Lightning seeds every rank alike (seed_everything, then reset_seed in each process), so
        # torch.randn here would hand every rank the same z: N processes would train on N copies
        # of one latent batch. Each rank draws from its own stream instead, reseeded at every
        # batch from the recipe seed, its rank and the step: a resumed run draws exactly the
        # latents the uninterrupted run would have drawn.
        self.noise = torch.Generator(device=self.device)
        # The recipe's learning rates win over those inside a resumed checkpoint's optimizer
        # state: `--resume --set optim.generator.lr=...` and NaN rollbacks change them.
        for optimizer, section in zip(self.trainer.optimizers,
                                      (self.recipe.optim.generator,
                                       self.recipe.optim.discriminator)):
            for group in optimizer.param_groups:
                group["lr"] = section.lr
                group.update(adam_kernels(self.recipe.optim))  # a checkpoint's stay behind

    def seed_step(self) -> None:
        """Every random draw of a batch (latents; noise inputs, style mixing and augmentation
        through torch's global generator) follows from the recipe seed, the rank and the step:
        a resumed run continues bit for bit, and ranks draw differently."""
        seed = noise_seed(self.recipe.seed, self.global_rank, self.trainer.global_step)
        self.noise.manual_seed(seed)
        torch.manual_seed(seed ^ 0x5DEECE66D)

    def latents(self, n: int) -> torch.Tensor:
        """`n` latent vectors for this rank's share of the batch."""
        return torch.randn(n, self.generator.latent_dim, device=self.device, generator=self.noise)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fake_labels(self, n: int) -> Optional[torch.Tensor]:
        """Classes of `n` fakes, uniform from this rank's stream; None when unconditional."""
        if not self.num_classes:
            return None
        return torch.randint(self.num_classes, (n,), device=self.device, generator=self.noise)

    def grid_labels(self, n: int) -> Optional[torch.Tensor]:
        """Every class in turn: the sample grid and FID tracking show all classes alike."""
        return torch.arange(n) % self.num_classes if self.num_classes else None

    # ------------------------------------------------------------------ the step

    def training_step(self, batch, batch_idx: int) -> None:
        pixels, real_labels = batch if self.num_classes else (batch[0], None)
        real = pixels.to(self.dtype_for_data) / 127.5 - 1.0
        opt_g, opt_d = self.optimizers()
        train, loss_cfg = self.recipe.train, self.recipe.loss
        d_step = self.d_step
        g_update_now = self.trainer.global_step % (train.n_critic + 1) == train.n_critic - 1
        log_now = g_update_now and (self.g_step + 1) % train.log_every == 0

        self.seed_step()
        z = self.latents(real.size(0))
        labels = self.fake_labels(real.size(0))
        with torch.set_grad_enabled(g_update_now):  # the one G forward serves D and G steps
            fake = self.generator(z, labels)

        # Discriminator: real vs detached fake, both through the same augmentation; lazy R1
        # every r1_every-th step, scaled up by the interval to keep its average weight.
        self.toggle_optimizer(opt_d)
        r1_now = loss_cfg.r1_gamma > 0 and d_step % loss_cfg.r1_every == 0
        d_loss, real_logits, fake_logits = self.discriminator_loss(
            real, fake.detach(), r1_now, real_labels, labels)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        d_grad_norm = self._grad_norm(self.discriminator)
        self.stop_if_not_finite(d_loss, d_grad_norm, "discriminator")
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        if self.augment.adaptive:
            self.adapt_augmentation(real_logits, d_step)

        if not g_update_now:
            return
        # Generator: fool D on the augmented fakes; lazy path-length regularization.
        self.toggle_optimizer(opt_g)
        g_loss = self.loss.generator(self.discriminator(self.augment(fake), labels))
        g_total = g_loss
        pl_now = loss_cfg.pl_weight > 0 and self.g_step % loss_cfg.pl_every == 0
        if pl_now:
            g_total = g_total + self.path_length_penalty(real.size(0)) * (
                loss_cfg.pl_weight * loss_cfg.pl_every)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_total)
        g_grad_norm = self._grad_norm(self.generator)
        self.stop_if_not_finite(g_total, g_grad_norm, "generator")
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self.average_buffers()
        if self.g_ema is not None:
            self.g_ema.update_parameters(self.generator)

        if log_now:
            # Means over ranks, so N processes log what one process with the global batch would.
            # Gradient norms need none: the gradients were averaged over ranks in the backward.
            g_loss, d_loss, real_mean, fake_mean = self.mean_over_ranks(torch.stack([
                g_loss.detach(), d_loss.detach(), real_logits.detach().mean(),
                fake_logits.detach().mean()]).float())
            extra = {}
            if self.augment.active:
                extra["augment/p"] = self.augment.p
            if self.augment.adaptive:
                extra["augment/rt"] = self.augment.rt
            if loss_cfg.pl_weight > 0:
                extra["loss/path_length_mean"] = self.pl_mean
            self.record({
                "loss/generator": g_loss, "loss/discriminator": d_loss,
                "D/real": real_mean, "D/fake": fake_mean,
                "grad_norm/generator": g_grad_norm, "grad_norm/discriminator": d_grad_norm,
                "lr/generator": opt_g.param_groups[0]["lr"],
                "lr/discriminator": opt_d.param_groups[0]["lr"],
                **extra, **self._progress(),
            })

    def stop_if_not_finite(self, loss: torch.Tensor, grad_norm: torch.Tensor,
                           network: str) -> None:
        """Stop before a non-finite loss or gradient reaches the weights.

        One host synchronisation per update: the price of naming the step where it happened.
        Under several processes only the gradient decides: it was averaged over ranks already,
        so one rank's NaN is every rank's and all stop together, with no extra collective (a
        rank stopping alone on its local loss would leave the others waiting).
        """
        finite = torch.isfinite(grad_norm)
        if self.trainer.world_size == 1:
            finite = finite & torch.isfinite(loss.detach())
        if not bool(finite):
            raise TrainingDiverged(
                f"non-finite {network} {'loss' if not torch.isfinite(loss) else 'gradient'} at "
                f"generator step {self.g_step + 1}; the weights were not updated and the last "
                "checkpoint is intact: resume with lower learning rates (gans train --resume "
                "RUN_DIR --set optim.generator.lr=... --set optim.discriminator.lr=...), or set "
                "train.on_nan: rollback")

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, r1: bool = False,
                           real_labels: Optional[torch.Tensor] = None,
                           fake_labels: Optional[torch.Tensor] = None):
        """The discriminator objective with its regularizers; returns (loss, D(x), D(G(z))).
        The labels are the classes of a conditional model, None otherwise."""
        args = (real, fake, r1, real_labels, fake_labels)
        if self.recipe.train.compile and (r1 or self.loss.gradient_penalty):
            # R1 and gradient penalties differentiate D's gradient; compiled graphs have no
            # double backward, so these (lazy, occasional) passes run D eagerly.
            with torch.compiler.set_stance("force_eager"):
                return self._discriminator_loss(*args)
        return self._discriminator_loss(*args)

    def _discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, r1: bool = False,
                            real_labels: Optional[torch.Tensor] = None,
                            fake_labels: Optional[torch.Tensor] = None):
        real = self.augment(real)
        if r1:  # the gradient is taken at the images D sees, augmented or not
            real = real.detach().requires_grad_(True)
        fake = self.augment(fake)
        real_logits = self.discriminator(real, real_labels)
        fake_logits = self.discriminator(fake, fake_labels)
        loss = self.loss.discriminator(real_logits, fake_logits)
        if r1:
            loss_cfg = self.recipe.loss
            loss = loss + (0.5 * loss_cfg.r1_gamma * loss_cfg.r1_every) * \
                losses.r1_penalty(real, real_logits)
        if self.loss.gradient_penalty:
            discriminator = self.discriminator if real_labels is None else (
                lambda images: self.discriminator(images, real_labels))
            loss = loss + self.recipe.loss.gp_weight * losses.gradient_penalty(
                discriminator, real.detach(), fake)
        return loss, real_logits, fake_logits

    def path_length_penalty(self, batch_size: int) -> torch.Tensor:
        """(|J_w^T y| - running mean)^2 on half a batch of fresh latents (StyleGAN2's Greg)."""
        generator, n = self.generator, max(1, batch_size // 2)
        labels = self.fake_labels(n)
        conditioned = {} if labels is None else {"labels": labels}
        ws = generator.broadcast(generator.mapping(self.latents(n), **conditioned))
        ws = ws.detach().requires_grad_(True)  # the penalty shapes synthesis, as in StyleGAN2
        lengths = losses.path_lengths(generator.synthesis(ws), ws)
        with torch.no_grad():
            self.pl_mean.copy_(self.pl_mean.lerp(lengths.mean().to(self.pl_mean.dtype), 0.01))
        return (lengths - self.pl_mean).square().mean()

    def adapt_augmentation(self, real_logits: torch.Tensor, d_step: int) -> None:
        """ADA: count sign(D(real)); every `ada_interval` D steps move p (over all ranks)."""
        self.augment.accumulate(real_logits)
        if (d_step + 1) % self.recipe.augment.ada_interval == 0:
            world = self.trainer.world_size
            signs, seen = self.mean_over_ranks(torch.stack([self.augment.signs,
                                                            self.augment.seen])) * world
            self.augment.adjust(signs, seen)

    def average_buffers(self) -> None:
        """Running statistics, averaged over ranks (a collective; a no-op alone).

        Each rank updates some buffers from its own shard or latents: BatchNorm statistics,
        StyleGAN's average w, the path-length mean. Averaged after every generator update (no
        graph holds them then), the ranks stay identical, buffers included, and the EMA
        generator that every rank samples FID images from is the same everywhere.
        SyncBatchNorm layers (`trainer.sync_batchnorm=true`) already agree and are left alone.
        The augmentation state is reduced where it is updated.
        """
        if self.trainer.world_size == 1:
            return
        synced = {id(b) for m in self.modules() if isinstance(m, nn.SyncBatchNorm)
                  for b in m.buffers()}
        statistics = [b for net in (self.generator, self.discriminator) for b in net.buffers()
                      if b.is_floating_point() and id(b) not in synced] + [self.pl_mean]
        for dtype in dict.fromkeys(s.dtype for s in statistics):  # the same order on every rank
            group = [s for s in statistics if s.dtype == dtype]
            means = self.mean_over_ranks(torch.cat([s.reshape(-1) for s in group]))
            for s, mean in zip(group, means.split([s.numel() for s in group])):
                s.copy_(mean.view_as(s))

    def mean_over_ranks(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over all processes (a collective: every rank must call it)."""
        if self.trainer.world_size == 1:
            return values
        return self.trainer.strategy.reduce(values, reduce_op="mean")

    @property
    def dtype_for_data(self) -> torch.dtype:
        return next(self.generator.parameters()).dtype

    @staticmethod
    def _grad_norm(network: nn.Module) -> torch.Tensor:
        grads = [p.grad for p in network.parameters() if p.grad is not None]
        return torch.nn.utils.get_total_norm(grads)

    def _progress(self) -> dict:
        """Images per second since the last log, and kimg."""
        now, seen = time.perf_counter(), self.images_seen
        rates = {}
        if self._time_at_last_log is not None and now > self._time_at_last_log:
            rates["images_per_sec"] = (seen - self._images_at_last_log) / \
                (now - self._time_at_last_log)
        self._time_at_last_log, self._images_at_last_log = now, seen
        return {**rates, "kimg": seen / 1000.0}

    def record(self, values: dict) -> None:
        """Scalars to TensorBoard against the generator step, and to the progress bar.

        Lightning's own x axis counts batches, which differs from generator steps when
        n_critic > 1; GAN curves read best against generator steps, as `train.*` counts them.
        """
        values = {k: float(v.detach()) if torch.is_tensor(v) else float(v)  # one host sync,
                  for k, v in values.items()}  # at log steps only
        self.log_dict(values, logger=False, prog_bar=True)
        if self.logger is not None:
            self.logger.log_metrics(values, step=self.g_step)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        train = self.recipe.train
        at_boundary = self.trainer.global_step % (train.n_critic + 1) == 0
        if at_boundary and self.g_step % train.sample_every == 0:
            self.write_samples()

    def on_train_end(self) -> None:
        if self.g_step % self.recipe.train.sample_every != 0:
            self.write_samples()

    # ------------------------------------------------------------------ samples

    @torch.no_grad()
    def generate(self, z: torch.Tensor, use_ema: bool = True,
                 labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Images from `z`; a conditional model without `labels` draws classes uniformly, the
        same ones at every call (FID tracking then compares generators, not class draws)."""
        network = self.sampling_generator if use_ema else self.generator
        if labels is None and self.num_classes:
            fixed = torch.Generator().manual_seed(self.recipe.seed + 2)
            labels = torch.randint(self.num_classes, (len(z),), generator=fixed).to(z.device)
        was_training = network.training
        network.eval()
        try:
            return network(z, labels)
        finally:
            network.train(was_training)

    def write_samples(self) -> None:
        """A grid from the fixed z: into samples/ and TensorBoard (rank zero only)."""
        if not self.trainer.is_global_zero:
            return
        from torchvision.utils import make_grid

        from gans.sampling.provenance import make_info, save_image

        labels = None if self.fixed_labels is None else self.fixed_labels.to(self.device)
        images = self.generate(self.fixed_z.to(self.device), labels=labels).float().cpu()
        grid = make_grid(images, nrow=int(len(images) ** 0.5), normalize=True, value_range=(-1, 1))
        # Only a run directory gets files: without a logger Lightning's log_dir is the cwd.
        # (trainer.log_dir would also hang under DDP: it broadcasts, and only rank 0 is here.)
        if self.logger is not None and self.logger.log_dir:
            out = Path(self.logger.log_dir) / "samples"
            out.mkdir(parents=True, exist_ok=True)
            # No checkpoint hash yet: the run directory and step name the weights instead.
            info = make_info("training-sample", recipe=self.recipe.to_dict(),
                             run=Path(self.logger.log_dir).resolve(), step=self.g_step,
                             seeds=self.recipe.seed, weights="raw" if self.g_ema is None else "ema")
            save_image(grid, out / f"step_{self.g_step:07d}.png", info)
        logger = self.logger
        if logger is not None and hasattr(logger.experiment, "add_image"):
            logger.experiment.add_image("samples", grid, self.g_step)

    # ------------------------------------------------------------------ optimizers

    def configure_optimizers(self):
        def adam(params, section):
            return torch.optim.Adam(params, lr=section.lr, betas=tuple(section.betas),
                                    weight_decay=section.weight_decay, **adam_kernels(optim))

        optim = self.recipe.optim
        return [adam(self.generator.parameters(), optim.generator),
                adam(self.discriminator.parameters(), optim.discriminator)]
