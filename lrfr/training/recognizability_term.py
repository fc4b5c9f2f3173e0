"""The ``recognizability`` loss term: Chai et al. 2023 (CVPR), Eq. 10 without ``L_cls``.

``L_total = L_cls + alpha L_L1 + beta L_ID + gamma L_MSE``: ``L_cls`` (ArcFace in the paper) is a separate
``classification`` term on the same input; :class:`RecognizabilityTerm` returns the other three parts,
named ``l1``, ``id`` and ``mse`` (logged as ``"<term>/l1"`` etc.), each already multiplied by its
alpha / beta / gamma (default 5, 2, 1: the paper's Fig. 3 / Table 5 values). A part whose factor is 0 is
left out, so the paper's ablations (Table 4) are settings: I = cls + ID (alpha 0, beta 2, gamma 0),
II = cls + MSE (alpha 0, beta 0, gamma 1), III = cls + L1 (alpha 5, beta 0, gamma 0); I works only with
``id_source="embedding"`` (see "ID loss input" below).

The choices the paper leaves open, and why:

* **UI center** (Eq. 2, 8). The paper defines it as the normalised mean of the normalised UI
  embeddings but not how it follows a backbone that changes during training. Here it is a buffer
  (saved in checkpoints) refreshed at every training step from the batch of the unlabelled UI stream
  (``ui``, e.g. ``"ui.image"``): that batch is embedded without gradient and with the backbone in eval
  mode (every module's mode is restored afterwards), so UI images do not enter the batch-norm running
  statistics; the batch center replaces the buffer on the first update and is blended in by an EMA
  ``normalise(m c + (1 - m) c_batch)`` (``ui_momentum`` m = 0.9) afterwards. A per-step EMA tracks the
  current backbone at the cost of one no-grad forward pass, and averages about 1 / (1 - m) batches
  (1,280 UI faces at m = 0.9 and 128 per batch), so that the center is not one batch's noise. In eval
  mode the center does not move. Without a ``ui`` stream the center is never updated and must be set
  with :meth:`RecognizabilityTerm.set_ui_center` (e.g. from a pretrained model's UI embeddings).
* **RI target** xi (Eq. 3), from the backbone embedding the classification term also uses, the head's
  prototypes ``weight`` and the center, is **detached**: Eq. 4 regresses the learned RI onto it as a
  label. The feature map into the regression module is not detached, so the ID loss (and the L1 loss)
  reach the backbone through it; with alpha = 0 the regression module is trained by the ID loss only,
  as in the paper's ablation I.
* **ID loss input** (Eq. 5-7): the paper applies the ID loss to the learned RI xi_hat of the regression
  module (``id_source="learned"``, the default). In ablation I (cls + ID only: alpha = gamma = 0) that is
  degenerate: nothing ties xi_hat to the embedding, so the regression layer alone drives L_ID to 0 within
  a few steps (its bias rises past tau) and no gradient reaches the backbone. ``id_source="embedding"``
  gives the ID loss a path that works there: it is applied to the RI of Eq. 1-3 computed from the
  (attached) embedding of each labelled image with the head's prototypes (detached: they are the
  classification term's) and the UI center, so hard faces (small xi: near the UI center, far from their
  prototype) are pushed away from the UI center and towards their prototype, the effect the ID loss is
  meant to have (Sec. 3.3, Fig. 1). (mu_UI, sigma_UI) are then (0, 1) (``ui_statistics="estimated"``
  would compare with the learned RIs of UI images, another scale, and is refused).
* **ID statistics** (Eq. 5-6): ``ui_statistics="standard_normal"`` uses (mu, sigma) = (0, 1), the
  paper's choice; ``"estimated"`` uses Eq. 6 over a FIFO (a buffer, checkpointed) of the last
  ``ui_samples`` (the paper's K = 5,000) learned RIs of UI images, computed without gradient and with
  the regression module in eval mode (no dropout) alongside the center update; (mu, sigma) are then
  constants of the loss, as the paper treats them.
* **MSE** (Eq. 8-9): the target ``v'`` is the raw (unnormalised) embedding projected away from the
  center, as Eq. 8 writes ``v_i``, and is **detached**: the attention module learns to produce it from
  the feature map (the gradient reaches the backbone through ``v_attn`` only); without the detach the
  backbone could lower the loss by moving ``v`` towards ``v_attn`` instead. ``mse_reduction="sum"`` is
  Eq. 9 as printed (squared error summed over the D dimensions, batch mean); ``"mean"`` is the
  per-element mean, D times smaller (see :func:`lrfr.losses.recognizability_index.attention_mse`).

The regression and attention modules need the backbone's feature-map shape and embedding size, so they
are built in :meth:`RecognizabilityTerm.setup`, which :func:`lrfr.training.build_objective` calls
before assembling the objective (a hand-built :class:`~lrfr.training.Objective` must call it itself).
Both modules always exist; in an ablation whose factor leaves one without a loss, its parameters get no
gradient (set ``find_unused_parameters`` under DDP).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrfr.losses.recognizability_index import (
    ONE_SIDED_95,
    attention_mse,
    index_diversion_loss,
    project_away_from_ui,
    recognizability_index,
    ri_regression_loss,
    ui_ri_statistics,
)
from lrfr.models.modes import eval_mode
from lrfr.models.perceptibility import PerceptibilityAttention, PerceptibilityRegression
from lrfr.training.objective import TERMS, LossTerm, StepContext

UI_STATISTICS = ("standard_normal", "estimated")
ID_SOURCES = ("learned", "embedding")


def batch_ui_center(embeddings: Tensor) -> Tensor:
    """(D,) normalise(mean of the L2-normalised rows): :func:`lrfr.protocols.quality.ui_center` in torch,
    on the embeddings' device and without a NumPy round trip."""
    return F.normalize(F.normalize(embeddings, dim=1).mean(0), dim=0)


@TERMS.register("recognizability")
class RecognizabilityTerm(LossTerm):
    """``alpha L_L1 + beta L_ID + gamma L_MSE`` of Chai et al. Eq. 10 (see the module docstring).

    ``head``: the cosine head whose ``weight`` (C, D) holds the class prototypes; ``input`` / ``labels``:
    the labelled images (the classification term's); ``ui``: the unlabelled UI images, or None.
    ``detach_target=False`` lets the L1 part reach the embedding through the RI target as well: then
    Eq. 4 also pulls xi towards xi_hat, which the ID loss pushes up, so the embedding itself moves
    away from the UI center (one reading of the paper's "xi_hat is still bounded to RI"); the chapter
    shows both.
    """

    def __init__(
        self,
        name: str,
        weight: float = 1.0,
        *,
        head: str = "main",
        input: str = "main.image",
        labels: str = "main.label",
        ui: str | None = "ui.image",
        alpha: float = 5.0,
        beta: float = 2.0,
        gamma: float = 1.0,
        tau: float = ONE_SIDED_95,
        smooth_l1_beta: float = 0.75,
        ui_statistics: str = "standard_normal",
        ui_samples: int = 5000,
        ui_momentum: float = 0.9,
        regression_dropout: float = 0.4,
        attention_reduction: int = 16,
        spatial_kernel: int = 7,
        mse_reduction: str = "sum",
        detach_target: bool = True,
        id_source: str = "learned",
    ) -> None:
        super().__init__(name, weight)
        if min(alpha, beta, gamma) < 0:
            raise ValueError(f"alpha, beta and gamma must be >= 0, got {alpha}, {beta}, {gamma}")
        if ui_statistics not in UI_STATISTICS:
            raise ValueError(f"ui_statistics must be one of {UI_STATISTICS}, got {ui_statistics!r}")
        if ui_statistics == "estimated" and (ui is None or ui_samples < 2):
            raise ValueError("ui_statistics='estimated' needs a ui stream and ui_samples >= 2")
        if not 0.0 <= ui_momentum < 1.0:
            raise ValueError(f"ui_momentum must lie in [0, 1), got {ui_momentum}")
        if id_source not in ID_SOURCES:
            raise ValueError(f"id_source must be one of {ID_SOURCES}, got {id_source!r}")
        if id_source == "embedding" and ui_statistics != "standard_normal":
            raise ValueError("id_source='embedding' needs ui_statistics='standard_normal' (the FIFO holds learned RIs)")
        if mse_reduction not in ("sum", "mean"):
            raise ValueError(f"mse_reduction must be 'sum' or 'mean', got {mse_reduction!r}")
        self.head_name, self.input_key, self.label_key, self.ui_key = head, input, labels, ui
        self.alpha, self.beta, self.gamma, self.tau = float(alpha), float(beta), float(gamma), float(tau)
        self.smooth_l1_beta, self.mse_reduction = smooth_l1_beta, mse_reduction
        self.ui_statistics, self.ui_samples, self.ui_momentum = ui_statistics, ui_samples, ui_momentum
        self.regression_dropout, self.attention_reduction = regression_dropout, attention_reduction
        self.spatial_kernel, self.detach_target, self.id_source = spatial_kernel, detach_target, id_source
        self.regression: PerceptibilityRegression | None = None
        self.attention: PerceptibilityAttention | None = None

    def setup(self, backbone: nn.Module) -> None:
        """Build the two modules and the buffers for ``backbone``'s feature map and embedding size."""
        channels, size = backbone.feature_channels, backbone.feature_map_size
        self.regression = PerceptibilityRegression(channels, size, self.regression_dropout)
        self.attention = PerceptibilityAttention(
            channels, size, backbone.embedding_size, self.attention_reduction, self.spatial_kernel
        )
        self.register_buffer("ui_center", torch.zeros(backbone.embedding_size))
        self.register_buffer("ui_updates", torch.zeros((), dtype=torch.long))
        if self.ui_statistics == "estimated":
            self.register_buffer("ui_ri_queue", torch.zeros(self.ui_samples))
            self.register_buffer("ui_ri_count", torch.zeros((), dtype=torch.long))

    def _require_setup(self) -> None:
        if self.regression is None:
            raise RuntimeError(
                f"loss term {self.name!r} has no modules yet: build the objective with build_objective, "
                "or call term.setup(backbone) first"
            )

    # ----------------------------------------------------------------------------- UI state
    def set_ui_center(self, center: np.ndarray | Tensor) -> None:
        """Set the UI center (normalised here), e.g. to ``lrfr.protocols.ui_center`` of a pretrained
        model's UI embeddings; later UI batches are blended into it by the EMA."""
        self._require_setup()
        value = torch.as_tensor(center, dtype=torch.float32).reshape(-1)
        if value.shape != self.ui_center.shape or not bool(torch.isfinite(value).all() & (value.norm() > 0)):
            raise ValueError(f"center must be a finite non-zero vector of {self.ui_center.numel()} values")
        self.ui_center.copy_(F.normalize(value, dim=0))
        self.ui_updates.fill_(1)

    @torch.no_grad()
    def observe_ui(self, backbone: nn.Module, images: Tensor) -> None:
        """Refresh the center (and, for estimated statistics, the RI FIFO) from a batch of UI images."""
        self._require_setup()
        with eval_mode(backbone, self.regression):
            output = backbone(images, return_feature_map=True)
            if self.ui_statistics == "estimated":
                self._enqueue(self.regression(output.feature_map).float())
        center = batch_ui_center(output.embedding.float())
        blended = self.ui_momentum * self.ui_center + (1 - self.ui_momentum) * center
        self.ui_center.copy_(F.normalize(torch.where(self.ui_updates > 0, blended, center), dim=0))
        self.ui_updates += 1

    def _enqueue(self, values: Tensor) -> None:
        values = values[-self.ui_samples :]
        positions = (self.ui_ri_count + torch.arange(len(values), device=values.device)) % self.ui_samples
        self.ui_ri_queue[positions] = values
        self.ui_ri_count += len(values)

    def ui_ri_moments(self) -> tuple[float | Tensor, float | Tensor]:
        """(mu_UI, sigma_UI) of the ID loss: (0, 1), or Eq. 6 over the FIFO of UI RIs."""
        if self.ui_statistics == "standard_normal":
            return 0.0, 1.0
        filled = min(int(self.ui_ri_count), self.ui_samples)
        return ui_ri_statistics(self.ui_ri_queue[:filled])

    # ----------------------------------------------------------------------------- loss
    def forward(self, ctx: StepContext) -> dict[str, Tensor]:
        self._require_setup()
        if self.training and self.ui_key is not None:
            self.observe_ui(ctx.objective.backbone, ctx.input(self.ui_key))
        if not bool(self.ui_updates > 0):
            raise RuntimeError(f"loss term {self.name!r} has no UI center: give it a ui stream or call set_ui_center")
        output = ctx.embed(self.input_key)
        embedding = output.embedding.detach().float()
        parts: dict[str, Tensor] = {}
        learned_id = self.beta and self.id_source == "learned"
        if self.alpha or learned_id:
            predicted = self.regression(output.feature_map)
        if self.alpha:
            source = embedding if self.detach_target else output.embedding.float()
            parts["l1"] = self.alpha * ri_regression_loss(predicted, self._embedding_ri(ctx, source), self.smooth_l1_beta)
        if self.beta:
            diverted = predicted if learned_id else self._embedding_ri(ctx, output.embedding.float())
            parts["id"] = self.beta * index_diversion_loss(diverted, *self.ui_ri_moments(), tau=self.tau)
        if self.gamma:
            projected = project_away_from_ui(embedding, self.ui_center)
            parts["mse"] = self.gamma * attention_mse(self.attention(output.feature_map), projected, self.mse_reduction)
        return parts

    def _embedding_ri(self, ctx: StepContext, embedding: Tensor) -> Tensor:
        """xi of Eq. 3 for ``embedding`` (the labelled batch), the detached prototypes and the UI center."""
        prototypes = self._prototypes(ctx).detach()
        return recognizability_index(embedding, ctx.input(self.label_key), prototypes, self.ui_center).ri

    def _prototypes(self, ctx: StepContext) -> Tensor:
        head = ctx.objective.heads[self.head_name]
        if not isinstance(getattr(head, "weight", None), Tensor):
            raise ValueError(
                f"head {self.head_name!r} ({type(head).__name__}) has no class prototypes 'weight'; "
                "the recognizability index needs a cosine head (e.g. arcface)"
            )
        return head.weight

    @torch.no_grad()
    def predict(self, feature_map: Tensor) -> tuple[Tensor, Tensor]:
        """The learned RI ``xi_hat`` (B,) and attended embedding ``v_attn`` (B, D), in eval mode."""
        self._require_setup()
        with eval_mode(self.regression, self.attention):
            return self.regression(feature_map), self.attention(feature_map)
