"""One training step of the paired cycle-GAN: generators first, then discriminators.

The step is a plain object over the four networks and two Adam optimisers; the loop, data,
logging and checkpoints live in :mod:`cemsynth.training.loop`. Everything the step computes is
in the [-1, 1] intensity domain; losses are computed in float32 even when the networks run
under bfloat16 autocast.

Generator update (both generators, one optimiser), with ``x`` = LE and ``y`` = RC patches::

    fake_rc = g_le_to_rc(x)      fake_le = g_rc_to_le(y)
    cycle_le = g_rc_to_le(fake_rc)   cycle_rc = g_le_to_rc(fake_le)
    same_rc = g_le_to_rc(y)      same_le = g_rc_to_le(x)          (identity; skipped at weight 0)
    loss = adversarial * [LS(d_rc(fake_rc)) + LS(d_le(fake_le))]
         + cycle    * [mix(cycle_le, x) + mix(cycle_rc, y)]
         + identity * [MAE(same_rc, y) + MAE(same_le, x)]
         + paired   * [mix(fake_rc, y) + mix(fake_le, x)]

``mix`` is ``mae * MAE + ssim * (1 - SSIM)``. Terms of weight 0 are skipped, and with
``reverse_generator`` False every term of the RC -> LE direction is left out (the supervised
LE -> RC regression of the ``unet`` preset: one network pass per step). The discriminators
take no gradient here (their parameters are frozen for this backward pass). Discriminator
update (one optimiser)::

    loss = LSd(d_rc(y), d_rc(fake_rc)) + LSd(d_le(x), d_le(fake_le))

with the generated images detached. Under DDP the step calls the DDP-wrapped networks where
parameters receive gradients (so they are averaged across ranks) and the plain
discriminators inside the generator update (no gradients, so no reduction to wait for).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from cemsynth.losses import (
    LossWeights,
    enhancement_weights,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    mae_loss,
    mae_ssim_loss,
    weighted_mae_loss,
)
from cemsynth.models.cyclegan import CycleGAN

Network = Callable[[torch.Tensor], torch.Tensor]

LOSS_NAMES = (
    "g_total",
    "g_adversarial",
    "g_cycle",
    "g_identity",
    "g_paired",
    "d_le",
    "d_rc",
)
"""Keys of the dict a step returns (also the training log's loss columns)."""


@dataclass(frozen=True)
class StepNetworks:
    """How the step calls each network (plain, DDP-wrapped and/or compiled callables).

    ``g_le_to_rc``, ``g_rc_to_le``, ``d_le``, ``d_rc``: used where parameters get gradients.
    ``d_le_frozen``, ``d_rc_frozen``: the discriminators inside the generator update.
    """

    g_le_to_rc: Network
    g_rc_to_le: Network
    d_le: Network
    d_rc: Network
    d_le_frozen: Network
    d_rc_frozen: Network

    @classmethod
    def plain(cls, nets: CycleGAN) -> StepNetworks:
        return cls(
            g_le_to_rc=nets.g_le_to_rc,
            g_rc_to_le=nets.g_rc_to_le,
            d_le=nets.d_le,
            d_rc=nets.d_rc,
            d_le_frozen=nets.d_le,
            d_rc_frozen=nets.d_rc,
        )


@contextlib.contextmanager
def frozen(modules: list[nn.Module]) -> Iterator[None]:
    """Parameters of ``modules`` take no gradient inside the block."""
    params = [p for module in modules for p in module.parameters()]
    saved = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, saved, strict=True):
            p.requires_grad_(flag)


class TrainStep:
    """Generator then discriminator update on one batch of paired patches.

    Args:
        nets: the four plain networks (their parameters are what the optimisers hold).
        call: how to call them (see :class:`StepNetworks`; ``StepNetworks.plain(nets)``).
        opt_g: optimiser over both generators' parameters.
        opt_d: optimiser over both discriminators' parameters.
        weights: the generator objective's weights.
        autocast_dtype: run the networks under autocast with this dtype (None: float32).
        device_type: "cpu" or "cuda" (for autocast).
        reverse_generator: also train ``g_rc_to_le`` (the cycle-GAN); False trains the
            LE -> RC direction alone (then the cycle weight must be 0).
        grad_clip_norm: clip the generators' gradient to this total L2 norm before their
            update (0: no clipping, the paper's setting).

    Terms whose weight is 0 are not computed (reported as 0); with ``adversarial`` 0 the
    discriminators are not run or updated at all.
    """

    def __init__(
        self,
        nets: CycleGAN,
        call: StepNetworks,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        weights: LossWeights,
        autocast_dtype: torch.dtype | None,
        device_type: str,
        reverse_generator: bool = True,
        grad_clip_norm: float = 0.0,
    ) -> None:
        self.nets = nets
        self.reverse_generator = reverse_generator
        self.grad_clip_norm = grad_clip_norm
        self.call = call
        self.opt_g = opt_g
        self.opt_d = opt_d
        self.weights = weights
        self.autocast_dtype = autocast_dtype
        self.device_type = device_type

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)

    def __call__(self, le: torch.Tensor, rc: torch.Tensor) -> dict[str, torch.Tensor]:
        """One update of all four networks.

        Args:
            le, rc: paired patches, float32 ``(N, 1, H, W)`` in [-1, 1] on the step's device.

        Returns:
            The losses (detached 0-d float32 tensors, still on the device) named as in
            :data:`LOSS_NAMES`.
        """
        w = self.weights
        c = self.call
        mix_weights = {"mae_weight": w.mae, "ssim_weight": w.ssim}
        zero = torch.zeros((), device=le.device)
        reverse = self.reverse_generator
        adversarial_on = w.adversarial > 0

        # --- generators -----------------------------------------------------------------
        self.opt_g.zero_grad(set_to_none=True)
        with frozen([self.nets.d_le, self.nets.d_rc]):
            with self._autocast():
                fake_rc = c.g_le_to_rc(le)
                fake_le = c.g_rc_to_le(rc) if reverse else None
                if w.cycle > 0 and fake_le is not None:
                    cycle_le = c.g_rc_to_le(fake_rc)
                    cycle_rc = c.g_le_to_rc(fake_le)
                if adversarial_on:
                    score_rc = c.d_rc_frozen(fake_rc)
                    score_le = c.d_le_frozen(fake_le) if fake_le is not None else None
                if w.identity > 0:
                    same_rc = c.g_le_to_rc(rc)
                    same_le = c.g_rc_to_le(le) if reverse else None
            adversarial = zero
            if adversarial_on:
                adversarial = lsgan_generator_loss(score_rc)
                if score_le is not None:
                    adversarial = adversarial + lsgan_generator_loss(score_le)
            cycle = zero
            if w.cycle > 0 and fake_le is not None:
                cycle = mae_ssim_loss(cycle_le, le, **mix_weights) + mae_ssim_loss(
                    cycle_rc, rc, **mix_weights
                )
            identity = zero
            if w.identity > 0:
                identity = mae_loss(same_rc, rc)
                if same_le is not None:
                    identity = identity + mae_loss(same_le, le)
            if w.enhancement > 0:  # the MAE of LE -> RC weighted towards enhancing pixels
                weights = enhancement_weights(le, rc, w.enhancement, w.enhancement_z)
                paired = w.mae * weighted_mae_loss(fake_rc, rc, weights)
                paired = paired + mae_ssim_loss(fake_rc, rc, 0.0, w.ssim)
            else:
                paired = mae_ssim_loss(fake_rc, rc, **mix_weights)
            if fake_le is not None:
                paired = paired + mae_ssim_loss(fake_le, le, **mix_weights)
            g_total = (
                w.adversarial * adversarial
                + w.cycle * cycle
                + w.identity * identity
                + w.paired * paired
            )
            g_total.backward()
        if self.grad_clip_norm > 0:
            parameters = [p for group in self.opt_g.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(parameters, self.grad_clip_norm)
        self.opt_g.step()

        # --- discriminators (only when they have a say in the generators' objective) -----
        d_rc = d_le = zero
        if adversarial_on:
            self.opt_d.zero_grad(set_to_none=True)
            fake_rc = fake_rc.detach()
            with self._autocast():
                real_rc_score, fake_rc_score = c.d_rc(rc), c.d_rc(fake_rc)
            d_rc = lsgan_discriminator_loss(real_rc_score, fake_rc_score)
            d_total = d_rc
            if fake_le is not None:
                with self._autocast():
                    real_le_score, fake_le_score = c.d_le(le), c.d_le(fake_le.detach())
                d_le = lsgan_discriminator_loss(real_le_score, fake_le_score)
                d_total = d_total + d_le
            d_total.backward()
            self.opt_d.step()

        return {
            "g_total": g_total.detach(),
            "g_adversarial": adversarial.detach(),
            "g_cycle": cycle.detach(),
            "g_identity": identity.detach(),
            "g_paired": paired.detach(),
            "d_le": d_le.detach(),
            "d_rc": d_rc.detach(),
        }


def make_optimizers(
    nets: CycleGAN,
    lr_generator: float,
    lr_discriminator: float,
    betas: tuple[float, float],
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam over both generators and Adam over both discriminators (the paper: lr 2e-4)."""
    opt_g = torch.optim.Adam(nets.generator_parameters(), lr=lr_generator, betas=betas)
    opt_d = torch.optim.Adam(nets.discriminator_parameters(), lr=lr_discriminator, betas=betas)
    return opt_g, opt_d
