"""GANModule: the LightningModule that runs an objective's phases (manual optimization).

One batch is one discriminator update; every `train.n_critic`-th batch also updates the
generator (the `Clock` says which, from Lightning's step counter, so the schedule survives a
resume with no state of its own). The algorithm itself lives in the objective
(gans/objectives/): for each network this step sums the terms of the objective's phases that
are due, back-propagates the sum, checks it is finite and steps that network's optimizer.
Sample grids, FID and checkpoints are callbacks (gans/training/callbacks.py).

Under several processes (docs/distributed.md) every rank runs this same step on its own shard
of the data and its own latents; the strategy averages each phase's gradients over ranks, so the
networks stay identical and the update equals one process with the whole global batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from pathlib import Path
from typing import Optional, Union

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Timer
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn

from gans import data
from gans.errors import GansError
from gans.models.build import build_networks
from gans.objectives.augment import Augment
from gans.objectives.base import NETWORKS, Phase, StepContext, along_decay, build_objective, due
from gans.recipe import Recipe, as_recipe, deep_merge, validate
from gans.training.clock import Clock


def ramped_ema(beta: float, ramp: float = 10.0):
    """EMA whose decay ramps up as (1 + n) / (ramp + n) toward `beta`.

    A fixed decay of 0.999 would keep the random initial weights in the average for thousands
    of steps; the ramp lets a short run's EMA generator follow training from the start. It
    spans about the last n / (ramp - 1) steps until `beta` takes over: a smaller ramp lets a
    long average act sooner.
    """

    def update(ema: list, current: list, num_averaged: torch.Tensor) -> None:
        if not ema[0].is_floating_point():  # BatchNorm's step counters: take the current value
            torch._foreach_copy_(ema, current)
            return
        n = float(num_averaged)
        decay = min(beta, (1.0 + n) / (ramp + n))
        torch._foreach_lerp_(ema, current, 1.0 - decay)

    return update


def adam_kernels(optim) -> dict:
    """Adam's keyword arguments for `optim.implementation` (the update is the same maths)."""
    return {"for-loop": {"foreach": False, "fused": False},
            "foreach": {"foreach": True, "fused": False},
            "fused": {"foreach": False, "fused": True}}[optim.implementation]


def decay_left(optim, progress: float) -> float:
    """How much of the learning-rate decay is still ahead at `progress` (the share of the run
    done, see `GANModule.decay_progress`): 1 until `optim.decay_start`, then down to 0 at the
    end, linear or cosine.

    A function of the progress, not an optimizer-side state: a resumed run continues on the same
    curve, and `--resume --set optim.generator.lr=...` or a NaN rollback rescales all of it."""
    if optim.schedule == "constant" or progress <= optim.decay_start:
        return 1.0
    t = min(1.0, (progress - optim.decay_start) / (1.0 - optim.decay_start))
    return (1.0 - t) if optim.schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))


def lr_scale(optim, progress: float) -> float:
    """The factor on each recipe learning rate at `progress`: 1 until `optim.decay_start`,
    then down to `optim.final_lr_scale` at the end."""
    return along_decay(optim.final_lr_scale, decay_left(optim, progress))


def run_progress(g_steps_done: int, steps: int, time_used: Optional[float] = None,
                 time_limit: Optional[float] = None) -> float:
    """The share of the run done: of train.steps, or of trainer.max_time when the clock is
    further along. A decay so measured ends at whichever limit stops the run, on a slow machine
    as on a fast one, and under a `gans bench` minutes budget (train.steps unbounded)."""
    progress = g_steps_done / steps
    if time_used is not None and time_limit:
        progress = max(progress, time_used / time_limit)
    return progress


def run_clock(trainer) -> Optional[Timer]:
    """Lightning's Timer of `trainer.max_time`, the one that stops the run; None without it."""
    return next((c for c in trainer.callbacks if isinstance(c, Timer)), None)


class TrainingDiverged(GansError):
    """A loss or gradient became NaN or infinite; nothing non-finite reached the weights.
    `checkpoint`: the last good checkpoint to roll back to, when there is one."""

    checkpoint: Optional[Path] = None


def noise_seed(seed: int, rank: int, step: int) -> int:
    """The seed of a rank's latents for one batch, from the recipe seed, the global rank and
    the step."""
    digest = hashlib.sha256(f"gans-latents/{seed}/{rank}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2 ** 63 - 1)


class _WithClasses(nn.Module):
    """A generator called with latents alone, as torch's `update_bn` calls a model: the i-th
    call gets the i-th batch of `classes` (None for an unconditional generator)."""

    def __init__(self, generator: nn.Module, classes: list):
        super().__init__()
        self.generator, self.classes = generator, iter(classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z, next(self.classes))


class GANModule(pl.LightningModule):
    """The algorithm of a recipe: its generator, discriminator, objective, augmentation and EMA
    generator, trained by manual optimization. Build it with `GANModule.from_recipe(...)` and
    train it with any `pytorch_lightning.Trainer`, or let `gans.train` do it.

    `recipe` is the recipe as a plain mapping (it is saved as the checkpoint's
    hyper-parameters); `class_names`, saved beside it, are the classes it trained with.
    """

    def __init__(self, recipe: dict, class_names: Optional[list] = None):
        super().__init__()
        self.recipe = validate(recipe, source="checkpoint recipe")
        # A checkpoint's own list wins: it names the indices that run trained with.
        self.class_names = list(class_names if class_names is not None
                                else data.class_names(self.recipe.data))
        if self.class_names and not self.recipe.data.classes:
            # The recipe records them too: everything that reads the checkpoint (sampling,
            # export, the explorer) then names the classes without the data, a folder's too.
            recipe = deep_merge(recipe, {"data": {"classes": self.class_names}})
            self.recipe = validate(recipe, source="checkpoint recipe")
        # The class names travel with the checkpoint, so `gans sample --class` maps names to
        # the indices this run trained with.
        self.save_hyperparameters({"recipe": recipe, "class_names": self.class_names})
        # Paired data (pix2pix): G translates each target's input image, which D sees too.
        self.paired = data.is_paired(self.recipe.data)
        self.generator, self.discriminator = build_networks(self.recipe)
        if self.recipe.train.channels_last:  # before the EMA copy, so that it shares the layout
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self.objective = build_objective(self.recipe)
        augment = self.recipe.augment
        start_p = augment.p if augment.p is not None else (
            0.0 if augment.ada_target is not None else 1.0)
        self.augment = Augment(augment.policy, start_p, augment.ada_target,
                               augment.ada_interval, augment.ada_kimg)
        self.automatic_optimization = False
        train = self.recipe.train
        self.g_ema: Optional[AveragedModel] = None
        if train.ema > 0:
            self.g_ema = AveragedModel(self.generator, use_buffers=True,
                                       multi_avg_fn=ramped_ema(train.ema, train.ema_ramp))
            self.g_ema.requires_grad_(False)
        if train.compile:
            # Module.compile keeps the modules and their state_dict keys as they are (no
            # `_orig_mod.` prefix), so checkpoints load uncompiled in `gans sample` and `eval`.
            # The EMA copy was made before, and stays eager: it runs only for samples and FID.
            self.generator.compile()
            self.discriminator.compile()
        self.noise: Optional[torch.Generator] = None  # this rank's latent stream; see latents()
        self._images_at_last_log = 0
        self._time_at_last_log: Optional[float] = None
        self._standing_at_step: Optional[int] = None  # global step of the last refresh

    @classmethod
    def from_recipe(cls, recipe: Union[Recipe, dict, str, Path],
                    overrides: Optional[list] = None) -> "GANModule":
        """The module of a recipe (a `Recipe`, a mapping or a YAML file), with `overrides`
        ("a.b=c", as `--set` takes them) applied."""
        return cls(as_recipe(recipe, overrides).to_dict())

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Union[str, Path], map_location=None,
                             hparams_file=None, strict: Optional[bool] = None,
                             weights_only: Optional[bool] = None, trust: bool = False,
                             **kwargs) -> "GANModule":
        """Lightning's `load_from_checkpoint` under `gans sample`'s rules: the file loads
        weights-only, and a checkpoint whose recipe names code outside gans (which building
        the module would import, hence run) is refused, unless `trust` says the file comes
        from a trusted source. Weights, EMA generator and objective state are restored; the
        optimizers are not (a run resumes with `gans.train(resume=...)` or `ckpt_path=`)."""
        from gans.sampling.checkpoint import read_checkpoint, refuse_foreign_code

        if not trust:
            # Lightning would build the module, importing the recipe's names, before any check.
            raw = read_checkpoint(Path(checkpoint_path))["hyper_parameters"]["recipe"]
            refuse_foreign_code(raw, Path(checkpoint_path))
        return super().load_from_checkpoint(
            checkpoint_path, map_location=map_location, hparams_file=hparams_file,
            strict=strict, weights_only=not trust if weights_only is None else weights_only,
            **kwargs)

    # ------------------------------------------------------------------ counters

    @property
    def clock(self) -> Clock:
        return Clock.of(self.recipe, self.trainer.world_size if self._trainer is not None else 1)

    @property
    def g_step(self) -> int:
        """Generator updates done so far."""
        return self.clock.g_steps(self.trainer.global_step)

    @property
    def d_step(self) -> int:
        """Discriminator updates done so far (read at the start of a batch)."""
        return self.clock.d_steps(self.trainer.global_step)

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
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group.update(adam_kernels(self.recipe.optim))  # a checkpoint's stay behind

    def set_learning_rates(self, g_steps_done: int) -> float:
        """The recipe's learning rates on its schedule, set before every batch: they win over
        those inside a resumed checkpoint's optimizer state, so `--resume --set
        optim.generator.lr=...` and NaN rollbacks change them. Returns the schedule's
        `decay_left`, for the loss weights that decay with it."""
        optim = self.recipe.optim
        progress = self.decay_progress(g_steps_done)
        scale = lr_scale(optim, progress)
        for optimizer, section in zip(self.trainer.optimizers, (optim.generator,
                                                                optim.discriminator)):
            for group in optimizer.param_groups:
                group["lr"] = section.lr * scale
        return decay_left(optim, progress)

    def decay_progress(self, g_steps_done: int) -> float:
        """`run_progress` with this run's limits. The clock is Lightning's Timer, the one that
        stops the run: it starts with training (not with the reference features) and resumes
        with the time a checkpoint had used. Under DDP the ranks take the furthest clock, so
        their learning rates, and so their weights, stay equal."""
        steps = self.recipe.train.steps
        timer = run_clock(self.trainer)
        if self.recipe.optim.schedule == "constant" or timer is None \
                or timer.time_remaining() is None:
            return run_progress(g_steps_done, steps)
        used = timer.time_elapsed()
        limit = used + timer.time_remaining()  # rounding differs by rank: agree on it too
        if self.trainer.world_size > 1:
            used, limit = self.trainer.strategy.reduce(
                torch.tensor([used, limit], device=self.device), reduce_op="max").tolist()
        return run_progress(g_steps_done, steps, used, limit)

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

    # ------------------------------------------------------------------ the step

    def fake_inputs(self, n: int, real_labels: Optional[torch.Tensor]) -> tuple:
        """(z, condition) for `n` fakes: latents and classes from this rank's stream, or for
        paired data no latent and the reals' own input images (so each fake has a target)."""
        if self.paired:
            return None, real_labels
        return self.latents(n), self.fake_labels(n)

    def fakes(self, z: Optional[torch.Tensor], labels: Optional[torch.Tensor]) -> torch.Tensor:
        """The training generator's images from `fake_inputs`."""
        return self.generator(labels) if self.paired else self.generator(z, labels)

    def training_step(self, batch, batch_idx: int) -> None:
        if self.paired:  # (targets, their input images), both uint8, normalised alike
            pixels, real_labels = batch[0], data.as_signed(batch[1], self.dtype_for_data)
        else:
            pixels, real_labels = batch if self.num_classes else (batch[0], None)
        real = data.as_signed(pixels, self.dtype_for_data)
        clock, step = self.clock, self.trainer.global_step
        updates_done = {"discriminator": clock.d_steps(step), "generator": clock.g_steps(step)}
        g_update_now = clock.updates_generator(step)
        phases = {net: [p for p in self.objective.phases
                        if p.network == net and due(p, updates_done[net])] for net in NETWORKS}
        log_now = g_update_now and (updates_done["generator"] + 1) % self.recipe.train.log_every == 0
        schedule_left = self.set_learning_rates(updates_done["generator"])

        self.seed_step()
        z, labels = self.fake_inputs(real.size(0), real_labels)
        fresh = self.recipe.train.g_fresh_latents
        with torch.set_grad_enabled(g_update_now and not fresh):  # one G forward for D and G
            fake = self.fakes(z, labels)
        ctx = StepContext(self, real, real_labels, z, labels, fake, input_grad=frozenset(
            name for phase in phases["discriminator"] for name in phase.input_grad),
            grad_through_augment=self.recipe.augment.penalties_at == "original",
            kimg=clock.kimg(step), decay_left=schedule_left)

        d_loss, d_grad_norm, d_terms = self.update("discriminator", phases["discriminator"], ctx)
        if self.augment.adaptive and ctx.computed_d_logits is not None:
            self.adapt_augmentation(ctx.computed_d_logits[0], updates_done["discriminator"])
        if not g_update_now:
            return
        if fresh:
            ctx.use_fakes_for_generator(*self.fake_inputs(real.size(0), real_labels))
        g_loss, g_grad_norm, g_terms = self.update("generator", phases["generator"], ctx)
        self.average_buffers()
        if self.g_ema is not None:
            self.g_ema.update_parameters(self.generator)

        if log_now:
            self.log_step(ctx, {"loss/generator": g_loss, "loss/discriminator": d_loss,
                                **{f"loss/{k}": v for k, v in {**d_terms, **g_terms}.items()}},
                          g_grad_norm, d_grad_norm)

    def update(self, network: str, phases: list[Phase], ctx: StepContext) -> tuple:
        """One optimizer step of `network` on the sum of its due phases' terms; returns (the
        sum, the gradient norm, the terms)."""
        optimizer = dict(zip(("generator", "discriminator"), self.optimizers()))[network]
        module = getattr(self, network)
        self.toggle_optimizer(optimizer)
        # Terms that differentiate a gradient (R1, R2, GP) need double backward, which
        # compiled graphs lack; those (lazy, occasional) passes run eagerly.
        eager = self.recipe.train.compile and any(p.double_backward for p in phases)
        with torch.compiler.set_stance("force_eager") if eager else contextlib.nullcontext():
            terms: dict = {}
            for phase in phases:
                for name, value in phase.terms(ctx).items():
                    if name in terms:
                        raise GansError(f"objective {type(self.objective).__name__}: phase "
                                        f"{phase.name!r} returns term {name!r} a second time; "
                                        "give each term its own name")
                    terms[name] = value
        if not terms:
            raise GansError(f"objective {type(self.objective).__name__} has no phase that "
                            f"updates the {network} at this step; give it a phase with "
                            "every=1 for each network")
        total = None
        for value in terms.values():
            total = value if total is None else total + value
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(total)
        grad_norm = self._grad_norm(module)
        self.stop_if_not_finite(total, grad_norm, network)
        optimizer.step()
        self.untoggle_optimizer(optimizer)
        return total, grad_norm, terms

    def log_step(self, ctx: StepContext, losses: dict, g_grad_norm: torch.Tensor,
                 d_grad_norm: torch.Tensor) -> None:
        """Means over ranks, so N processes log what one process with the global batch would.
        Gradient norms need none: the gradients were averaged over ranks in the backward."""
        values = {**losses, **ctx.logged()}
        means = self.mean_over_ranks(torch.stack([v.detach().float() for v in values.values()]))
        extra = dict(self.objective.logged())
        if self.augment.active:
            extra["augment/p"] = self.augment.p
        if self.augment.adaptive:
            extra["augment/rt"] = self.augment.rt
        optimizers = dict(zip(("generator", "discriminator"), self.optimizers()))
        self.record({
            **dict(zip(values, means)),
            "grad_norm/generator": g_grad_norm, "grad_norm/discriminator": d_grad_norm,
            "lr/generator": optimizers["generator"].param_groups[0]["lr"],
            "lr/discriminator": optimizers["discriminator"].param_groups[0]["lr"],
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
        StyleGAN's average w, the objective's running statistics (the path-length mean). Averaged after every generator update (no
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
                      if b.is_floating_point() and id(b) not in synced] + \
            [b for b in self.objective.buffers() if b.is_floating_point()]
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
        now, seen = time.perf_counter(), self.clock.images(self.trainer.global_step)
        rates = {}
        if self._time_at_last_log is not None and now > self._time_at_last_log:
            rates["images_per_sec"] = (seen - self._images_at_last_log) / \
                (now - self._time_at_last_log)
        self._time_at_last_log, self._images_at_last_log = now, seen
        return {**rates, "kimg": self.clock.kimg(self.trainer.global_step)}

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

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Checkpoints written before objectives owned their statistics kept the path-length
        # mean at the top level; it is the objective's now.
        state = checkpoint.get("state_dict", {})
        if "pl_mean" in state:
            value = state.pop("pl_mean")
            if "objective.pl_mean" in self.state_dict():
                state["objective.pl_mean"] = value

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Lightning took the state_dict before this hook: refreshed buffers go in by hand.
        if self.refresh_standing_statistics():
            prefix = "g_ema.module." if self.g_ema is not None else "generator."
            for name, buffer in self.sampling_generator.named_buffers():
                checkpoint["state_dict"][prefix + name] = buffer.detach().clone()

    # ------------------------------------------------------------------ samples

    @torch.no_grad()
    def refresh_standing_statistics(self) -> bool:
        """`train.standing_statistics` (BigGAN, Brock et al. 2019): the sampling generator's
        BatchNorm statistics recomputed from its own images of fixed latents, once per step.

        The EMA copy otherwise carries an average of the training generator's running
        statistics, measured on other weights than its own. Training never reads them (it
        normalises with batch statistics), so the refresh leaves the run's course unchanged.
        Returns whether the generator holds standing statistics now."""
        count = self.recipe.train.standing_statistics
        if not count:
            return False
        step = self.trainer.global_step if self._trainer is not None else None
        if step is not None and step == self._standing_at_step:
            return True
        network = self.sampling_generator
        fixed = torch.Generator().manual_seed(self.recipe.seed + 3)
        batch = self.recipe.train.batch_size
        latents = [torch.randn(min(batch, count - start), network.latent_dim, generator=fixed)
                   for start in range(0, count, batch)]
        classes = [torch.randint(self.num_classes, (len(z),), generator=fixed).to(self.device)
                   if self.num_classes else None for z in latents]
        update_bn(latents, _WithClasses(network, classes).train(network.training),
                  device=self.device)
        self._standing_at_step = step
        return True

    @torch.no_grad()
    def generate(self, z: torch.Tensor, use_ema: bool = True,
                 labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Images from `z`; a conditional model without `labels` draws classes uniformly, the
        same ones at every call (FID tracking then compares generators, not class draws)."""
        if use_ema:
            self.refresh_standing_statistics()
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

    @torch.no_grad()
    def translate(self, conditions: torch.Tensor, use_ema: bool = True,
                  seed: int = 0) -> torch.Tensor:
        """A paired model's images from uint8 input images (N, C, H, W); the dropout noise
        is drawn from `seed`, so the same inputs give the same images at every call."""
        from gans.sampling.generate import translate

        return translate(self.sampling_generator if use_ema else self.generator,
                         conditions.to(self.device), seed)

    # ------------------------------------------------------------------ optimizers

    def configure_optimizers(self):
        def adam(params, section):
            return torch.optim.Adam(params, lr=section.lr, betas=tuple(section.betas),
                                    weight_decay=section.weight_decay, **adam_kernels(optim))

        optim = self.recipe.optim
        return [adam(self.generator.parameters(), optim.generator),
                adam(self.discriminator.parameters(), optim.discriminator)]
