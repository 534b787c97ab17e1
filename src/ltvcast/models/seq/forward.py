"""Running the network: torch settings, heads at every step or the last, direct forecasts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from ltvcast.data.schemas import PREDICTION_COLUMNS, QUANTILE_COLUMNS
from ltvcast.models.seq.inputs import NetworkInputs
from ltvcast.models.seq.loss import ziln_mean, ziln_params, ziln_quantiles
from ltvcast.models.seq.network import SeqNetwork, State

#: The forecast columns, in the order the forecasts return them.
FORECAST_COLUMNS = (*PREDICTION_COLUMNS[1:], *QUANTILE_COLUMNS)
#: Key of the curve's ratios among a direct forecast's columns.
CURVE_RATIOS = "curve_ratios"


def resolve_device(name: str) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"`` as a torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@contextlib.contextmanager
def torch_session(
    device: torch.device, random_state: int, n_threads: int | None = None
) -> Iterator[None]:
    """Seeded, deterministic torch settings for the duration of a fit or predict.

    The global random state, thread count and determinism flag are restored afterwards.
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    devices = [torch.cuda.current_device()] if device.type == "cuda" else []
    try:
        if n_threads:
            torch.set_num_threads(n_threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(random_state)
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def chunks(n: int, size: int) -> Iterator[np.ndarray]:
    """Consecutive row indices ``0 .. n - 1`` in blocks of at most ``size``."""
    for start in range(0, n, size):
        yield np.arange(start, min(start + size, n))


def forward_all(net: SeqNetwork, inputs: NetworkInputs, idx: np.ndarray) -> dict[str, torch.Tensor]:
    """Heads ``(len(idx), steps, .)`` at the end of every LSTM step of rows ``idx``."""
    device = inputs.device
    x = torch.from_numpy(inputs.steps[idx]).to(device)
    hidden = net.encode(x)
    context = x[:, net.stride - 1 :: net.stride, inputs.n_channels :]
    index = torch.from_numpy(idx).to(device)
    static = net.static(inputs.categorical[index], inputs.numeric[index])
    ends = slice(net.stride - 1, None, net.stride)
    wide, offset = (
        None if a is None else torch.from_numpy(a[idx][:, ends]).to(device)
        for a in (inputs.wide, inputs.offset)
    )
    return net.forward_heads(hidden, context, static, wide, offset)


def last_outputs(
    net: SeqNetwork, inputs: NetworkInputs, idx: np.ndarray, with_state: bool = False
) -> tuple[dict[str, torch.Tensor], State | None, torch.Tensor]:
    """Heads, LSTM state (when asked) and static inputs at each customer's last period."""
    device = inputs.device
    length = torch.from_numpy(inputs.lengths[idx])
    x = torch.from_numpy(inputs.steps[idx, : int(length.max())]).to(device)
    last = (length - 1).to(device)
    rows = torch.arange(len(idx), device=device)
    state = net.encode_state(x, length) if with_state else None
    block = torch.div(last, net.stride, rounding_mode="floor")
    hidden = state[0][-1] if state is not None else net.encode(x)[rows, block]
    context = x[rows, last, inputs.n_channels :]
    index = torch.from_numpy(idx).to(device)
    static = net.static(inputs.categorical[index], inputs.numeric[index])
    wide, offset = last_hybrid(inputs, idx)
    return net.forward_heads(hidden, context, static, wide, offset), state, static


def last_hybrid(
    inputs: NetworkInputs, idx: np.ndarray
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The hybrid's wide inputs and head offsets at the last period of rows ``idx``."""
    last = inputs.lengths[idx] - 1
    return tuple(  # type: ignore[return-value]
        None
        if a is None
        else torch.from_numpy(a[idx] if a.ndim == 2 else a[idx, last]).to(inputs.device)
        for a in (inputs.wide, inputs.offset)
    )


def direct_forecast(net: SeqNetwork, inputs: NetworkInputs) -> dict[str, np.ndarray]:
    """Direct mode: the horizon heads at the last period, by :data:`FORECAST_COLUMNS`, and
    with a curve under :data:`CURVE_RATIOS` the ``(customers, n_curve + 1)`` ratios of
    :meth:`~ltvcast.models.seq.network.SeqNetwork.curve_ratios`.

    The value is the ZILN mean and its quantiles; purchases are the Poisson mean, at least
    ``P(buy)``; ``p_active`` is ``P(buy)``.
    """
    parts, ratios = [], []
    for idx in chunks(len(inputs.lengths), 16384):
        out, _, _ = last_outputs(net, inputs, idx)
        logits = out["horizon_value"]
        p, _, _ = ziln_params(logits)
        purchases = torch.maximum(torch.exp(out["horizon_count"][:, 0]), p)
        parts.append(
            torch.stack([ziln_mean(logits), purchases, p, *ziln_quantiles(logits).unbind(-1)], 1)
            .double()
            .cpu()
            .numpy()
        )
        curve = net.curve_ratios(out)
        if curve is not None:
            ratios.append(curve.double().cpu().numpy())
    columns = dict(zip(FORECAST_COLUMNS, np.concatenate(parts).T, strict=True))
    if ratios:
        columns[CURVE_RATIOS] = np.concatenate(ratios)
    return columns
