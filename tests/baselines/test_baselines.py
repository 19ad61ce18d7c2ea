"""The trainable spiking-RNN baseline learns a task whose answer is known: which channel group fires."""

from __future__ import annotations

import numpy as np
import torch

from neurohw.baselines.spiking_rnn import SpikingRNN, stack_rasters, train_classifier, train_contrastive


def _rasters(rng, labels, n_ch=12, t=10, p=0.6):
    out = []
    for y in labels:
        r = (rng.random((t, n_ch)) < 0.05).astype(np.uint8)
        r[:, 3 * y : 3 * y + 3] |= (rng.random((t, 3)) < p).astype(np.uint8)
        out.append(r)
    return out


def test_stack_rasters_pads_with_zeros():
    x = stack_rasters([np.ones((2, 3), np.uint8), np.ones((4, 3), np.uint8)])
    assert x.shape == (2, 4, 3)
    assert float(x[0, 2:].sum()) == 0.0 and float(x[1].sum()) == 12.0


def test_rates_are_spike_counts_over_time():
    net = SpikingRNN(4, 5, 2)
    with torch.no_grad():
        r = net.rates(torch.ones(3, 7, 4) * 10)
    assert r.shape == (3, 5)
    assert torch.all((r * 7 - torch.round(r * 7)).abs() < 1e-5)  # whole spike counts / T
    assert float(r.min()) >= 0 and float(r.max()) <= 1


def test_classifier_learns_channel_groups():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 240)
    x = stack_rasters(_rasters(rng, y))
    res = train_classifier(x[:160], y[:160], x[160:200], y[160:200], x[200:], y[200:], 4, 32, 0.9, 8, 1e-2, 32, 0)
    assert res["test_accuracy"] > 0.85, res
    assert res["train_s"] > 0


def test_contrastive_pair_aligns_two_modalities():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    xa = stack_rasters(_rasters(rng, y))
    # modality b: the class groups sit on other channels, in another order
    yb_map = np.array([2, 0, 3, 1])
    xb = stack_rasters(_rasters(rng, yb_map[y], n_ch=12, t=8))
    seen = np.isin(y, [0, 1, 2])
    part = lambda idx: (xa[idx], xb[idx], y[idx])  # noqa: E731
    tr = np.flatnonzero(seen[:200])
    val = part(200 + np.flatnonzero(seen[200:240]))
    test_seen, test_unseen = part(240 + np.flatnonzero(seen[240:])), part(240 + np.flatnonzero(~seen[240:]))
    res = train_contrastive(xa[tr], xb[tr], y[tr], val, test_seen, test_unseen, 24, 0.9, 8, 0.5, 5, 1e-2, 32, 0)
    # chance among 3 seen classes is 1/3
    assert res["seen"]["a_to_b"] > 0.8 and res["seen"]["b_to_a"] > 0.8, res
