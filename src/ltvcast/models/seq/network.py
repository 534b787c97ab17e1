"""The hybrid network: causal Conv1D block -> stacked LSTM -> ZILN and count heads.

The founding paper's sketch (Conv1D 64 filters, kernel 3 -> LSTM 50 -> LSTM 50 -> Dense) with
the output changed from one MSE-trained number to distributions:

- ``horizon_value``: ZILN logits (P(buy), mu, sigma) of spend over the forecast horizon;
- ``horizon_count``: log of the Poisson mean of purchases over the horizon;
- ``next_value``: ZILN logits of the *next period's* spend, and ``next_count``: log of the
  Poisson mean of the extra purchases (beyond the first) in a next period that has a purchase;
  these drive the simulation rollout (Valendin et al. 2022) and are an auxiliary task otherwise;
- ``curve_count`` (direct mode with a curve): one raw step per other horizon of the curve.
  :func:`curve_log_means` turns them into the log mean purchases at every horizon, monotone
  by construction: from the horizon head outwards each longer horizon adds
  ``softplus(step) >= 0`` to the log mean and each shorter one takes it off (Kuaishou's ODMN,
  Li et al. 2022, orders the horizons the same way with non-negative increments).

Sequences are **left-aligned** (a customer's first period at position 0, padding at the end).
The convolution is causal (left zero padding) and the LSTM is unidirectional, so the output at
a position depends only on the positions before it: padding never changes a customer's output.
With ``stride`` ``s > 1`` the convolution also pools: output ``j`` sees the ``kernel_size``
periods ending with period ``(j + 1) s - 1``, so the LSTM runs ``s`` times fewer steps (the
CNN-LSTM's usual down-sampling); a customer's length is then a multiple of ``s``.
Per-step context (tenure, calendar ...) enters the convolution and is concatenated again, with
the static profile inputs (embeddings + scaled numerics) and, in the hybrid, the per-origin wide
inputs (:mod:`~ltvcast.models.seq.hybrid`), before the heads; the hybrid also adds per-origin
offsets to the horizon heads' logits (a residual on the BTYD forecast).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ltvcast.exceptions import ConfigError

HEADS = ("horizon_value", "horizon_count", "next_value", "next_count")
_HEAD_SIZES = {"horizon_value": 3, "horizon_count": 1, "next_value": 3, "next_count": 1}
#: The head of the curve's steps (``n_curve`` outputs).
CURVE_HEAD = "curve_count"
#: Width of the horizon heads' offsets (ZILN logits and log count); the curve's follow.
HORIZON_OFFSETS = 4
State = tuple[torch.Tensor, torch.Tensor]


def curve_log_means(own: torch.Tensor, steps: torch.Tensor, position: int) -> torch.Tensor:
    """Log mean purchases ``(..., k + 1)`` at the curve's horizons, shortest first.

    ``own`` ``(...)`` is the log mean at the model's own horizon, which stands at index
    ``position``; ``steps`` ``(..., k)`` are the raw steps of the other horizons in the same
    order. Each horizon differs from its neighbour towards ``position`` by
    ``softplus(step) >= 0``, so the means never decrease with the horizon, whatever the
    weights.
    """
    up = torch.cumsum(F.softplus(steps[..., position:]), -1)
    down = torch.flip(torch.cumsum(torch.flip(F.softplus(steps[..., :position]), [-1]), -1), [-1])
    own = own.unsqueeze(-1)
    return torch.cat([own - down, own, own + up], -1)


def embedding_dim(cardinality: int) -> int:
    """Embedding width for a vocabulary of ``cardinality`` entries (unknown included)."""
    return int(min(8, (cardinality + 1) // 2))


class SeqNetwork(nn.Module):
    """Conv1D -> LSTM x ``lstm_layers`` -> per-step heads.

    Parameters
    ----------
    n_inputs, n_context
        Activity channels and context features per step.
    n_numeric
        Scaled numeric profile inputs.
    cardinalities
        Vocabulary size (unknown included) of each categorical profile column.
    n_wide
        Per-origin wide inputs of the dense layer (0: none, the paper's network).
    n_curve, curve_position
        Other horizons of the purchase curve (0: none) and how many of them are shorter
        than the model's own (:func:`curve_log_means`).
    negbin
        Whether the horizon and curve purchase counts are negative binomial, with one
        learned log size per horizon (``log_dispersion``); else Poisson.
    """

    def __init__(
        self,
        n_inputs: int,
        n_context: int,
        n_numeric: int,
        cardinalities: Sequence[int],
        *,
        conv_filters: int = 64,
        kernel_size: int = 3,
        lstm_hidden: int = 50,
        lstm_layers: int = 2,
        head_hidden: int = 32,
        dropout: float = 0.0,
        stride: int = 1,
        n_wide: int = 0,
        n_curve: int = 0,
        curve_position: int = 0,
        negbin: bool = False,
    ) -> None:
        super().__init__()
        if not 1 <= stride <= kernel_size:
            raise ConfigError(
                f"seq: stride must be in [1, kernel_size={kernel_size}]; got {stride!r}"
            )
        self.kernel_size = kernel_size
        self.stride = stride
        self.n_wide = n_wide
        self.n_curve = n_curve
        self.curve_position = curve_position
        self.conv = nn.Conv1d(n_inputs + n_context, conv_filters, kernel_size, stride=stride)
        self.lstm = nn.LSTM(
            conv_filters,
            lstm_hidden,
            lstm_layers,
            batch_first=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_dim(c)) for c in cardinalities)
        n_static = n_numeric + sum(embedding_dim(c) for c in cardinalities)
        self.trunk = nn.Sequential(
            nn.Linear(lstm_hidden + n_context + n_static + n_wide, head_hidden), nn.ReLU()
        )
        self.heads = nn.ModuleDict({k: nn.Linear(head_hidden, _HEAD_SIZES[k]) for k in HEADS})
        if n_curve:  # drawn without advancing the global generator: the rest of the model
            with torch.random.fork_rng(devices=[]):  # and its refit start as without a curve
                self.heads[CURVE_HEAD] = nn.Linear(head_hidden, n_curve)
        self.log_dispersion = nn.Parameter(torch.zeros(1 + n_curve)) if negbin else None

    def encode(self, steps: torch.Tensor) -> torch.Tensor:
        """Top-layer outputs ``(B, T // stride, lstm_hidden)`` over left-aligned ``steps``.

        Outputs at a customer's real positions do not depend on the padding after them
        (causal convolution, unidirectional LSTM); outputs on padding are meaningless.
        """
        out, _ = self.lstm(self._convolve(steps))
        return out

    def encode_state(self, steps: torch.Tensor, lengths: torch.Tensor) -> State:
        """LSTM state ``(lstm_layers, B, lstm_hidden)`` after each customer's last real step.

        ``lengths`` are in periods (multiples of ``stride``).
        """
        packed = pack_padded_sequence(
            self._convolve(steps),
            lengths.cpu() // self.stride,
            batch_first=True,
            enforce_sorted=False,
        )
        _, state = self.lstm(packed)
        return state

    def _convolve(self, steps: torch.Tensor) -> torch.Tensor:
        z = F.pad(steps.transpose(1, 2), (self.kernel_size - self.stride, 0))
        return torch.relu(self.conv(z)).transpose(1, 2)

    def step(self, window: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Advance the encoder one step; ``window`` holds the last ``kernel_size`` periods."""
        z = torch.relu(self.conv(window.transpose(1, 2))).transpose(1, 2)
        out, state = self.lstm(z, state)
        return out[:, 0], state

    def head(self, name: str) -> nn.Linear:
        """The output layer of head ``name`` (one of ``HEADS``, or ``CURVE_HEAD``)."""
        return cast(nn.Linear, self.heads[name])

    def embedding(self, k: int) -> nn.Embedding:
        """The embedding of categorical profile column ``k``."""
        return cast(nn.Embedding, self.embeddings[k])

    def static(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """Static profile inputs: embeddings of ``categorical`` (long) and ``numeric``."""
        parts = [emb(categorical[:, k]) for k, emb in enumerate(self.embeddings)]
        return torch.cat([*parts, numeric], dim=-1)

    def forward_heads(
        self,
        hidden: torch.Tensor,
        context: torch.Tensor,
        static: torch.Tensor,
        wide: torch.Tensor | None = None,
        offset: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Heads on encoder outputs ``(..., H)`` with matching context and static inputs.

        ``wide`` ``(..., n_wide)``: per-origin wide inputs (required when ``n_wide > 0``);
        ``offset`` ``(..., 4 + n_curve)``: added to the ``horizon_value`` logits (3), the
        ``horizon_count`` log mean (1) and the curve's steps (``n_curve``; 0 where absent).
        """
        if static.dim() < hidden.dim():
            static = static.unsqueeze(-2).expand(*hidden.shape[:-1], static.shape[-1])
        parts = [hidden, context, static]
        if self.n_wide:
            if wide is None:
                raise ValueError(f"this network takes {self.n_wide} wide inputs; got none")
            parts.append(wide)
        shared = self.trunk(torch.cat(parts, dim=-1))
        # the curve's steps read the shared layer with its gradient stopped: their losses
        # train them alone, so the own horizon's heads learn as without a curve
        out = {
            name: head(shared.detach() if name == CURVE_HEAD else shared)
            for name, head in self.heads.items()
        }
        if offset is not None:
            out["horizon_value"] = out["horizon_value"] + offset[..., :3]
            out["horizon_count"] = out["horizon_count"] + offset[..., 3:HORIZON_OFFSETS]
            if self.n_curve and offset.shape[-1] > HORIZON_OFFSETS:
                out[CURVE_HEAD] = out[CURVE_HEAD] + offset[..., HORIZON_OFFSETS:]
        return out

    def curve_ratios(self, out: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Mean purchases at each horizon of the curve over those at the model's own,
        ``(..., n_curve + 1)`` (``None`` without a curve): :func:`curve_log_means`."""
        if not self.n_curve:
            return None
        own = out["horizon_count"][..., 0]
        return torch.exp(
            curve_log_means(own, out[CURVE_HEAD], self.curve_position) - own[..., None]
        )
