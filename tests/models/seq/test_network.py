"""Network shapes and masking: right padding never changes a customer's outputs."""

from __future__ import annotations

import torch

from ltvcast.models.seq.network import SeqNetwork


def _net() -> SeqNetwork:
    torch.manual_seed(0)
    return SeqNetwork(3, 2, 1, [4], conv_filters=6, lstm_hidden=5, lstm_layers=2, head_hidden=4)


def test_shapes() -> None:
    net = _net()
    steps = torch.randn(7, 10, 5)
    hidden = net.encode(steps)
    h, c = net.encode_state(steps, torch.tensor([10, 1, 3, 10, 5, 2, 7]))
    assert hidden.shape == (7, 10, 5) and h.shape == c.shape == (2, 7, 5)
    static = net.static(torch.zeros(7, 1, dtype=torch.long), torch.zeros(7, 1))
    out = net.forward_heads(hidden, steps[..., -2:], static)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "horizon_value": (7, 10, 3),
        "horizon_count": (7, 10, 1),
        "next_value": (7, 10, 3),
        "next_count": (7, 10, 1),
    }


def test_padding_does_not_change_a_short_customer() -> None:
    net = _net().eval()
    short = torch.randn(1, 3, 5)
    outputs = []
    for total in (3, 8, 20):
        padded = torch.cat([short, 100.0 * torch.randn(1, total - 3, 5)], dim=1)
        batch = torch.cat([padded, torch.randn(1, total, 5)])  # a longer neighbour
        with torch.no_grad():
            hidden = net.encode(batch)
            h, c = net.encode_state(batch, torch.tensor([3, total]))
        outputs.append((hidden[0, :3], h[:, 0], c[:, 0]))
    for hidden, h, c in outputs[1:]:
        torch.testing.assert_close(hidden, outputs[0][0])
        torch.testing.assert_close(h, outputs[0][1])
        torch.testing.assert_close(c, outputs[0][2])
    # the top-layer state after the last real step is the output at that step
    torch.testing.assert_close(outputs[0][1][-1], outputs[0][0][-1])


def test_step_continues_encode() -> None:
    net = _net().eval()
    steps = torch.randn(2, 6, 5)
    with torch.no_grad():
        full = net.encode(steps)
        state = net.encode_state(steps[:, :5], torch.tensor([5, 5]))
        out, _ = net.step(steps[:, 3:6], state)
    torch.testing.assert_close(out, full[:, 5])


def test_stride_pools_blocks_that_end_on_a_period() -> None:
    torch.manual_seed(0)
    net = SeqNetwork(3, 2, 0, [], conv_filters=6, lstm_hidden=5, stride=2).eval()
    steps = torch.randn(2, 8, 5)
    with torch.no_grad():
        full = net.encode(steps)
        state = net.encode_state(steps[:, :6], torch.tensor([6, 6]))
        out, _ = net.step(steps[:, 5:8], state)  # the block of periods 6-7 (and period 5)
        head = net.encode(steps[:, :4])  # blocks never look past their last period
    assert full.shape == (2, 4, 5)
    torch.testing.assert_close(out, full[:, 3])
    torch.testing.assert_close(head, full[:, :2])
    torch.testing.assert_close(state[0][-1], full[:, 2])
