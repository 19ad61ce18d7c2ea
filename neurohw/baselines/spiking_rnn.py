"""A trainable spiking RNN (snntorch ``RLeaky``, BPTT with a fast-sigmoid surrogate gradient).

Per time bin t (the same discrete LIF as the LSM, but every weight is trained)::

    cur[t]         = W_in x[t] + b
    spk[t], mem[t] = RLeaky(cur[t], spk[t-1], mem[t-1])      (mem decays by beta, reset to zero)
    out            = W_out (sum_t spk[t] / T)                  (rate readout, like the LSM's)

Used as the paper's "trainable spiking-RNN" classifier and, with one network per modality and the
symmetric InfoNCE loss, as its contrastive (spiking-RNN CLIP) variant.
"""

from __future__ import annotations

import time

import numpy as np
import snntorch as snn
import torch
import torch.nn.functional as F
from snntorch import surrogate
from torch import nn

from neurohw.heads.losses import symmetric_info_nce
from neurohw.heads.retrieval import cross_modal_retrieval


class SpikingRNN(nn.Module):
    """Input layer -> recurrent LIF layer (all-to-all, trained) -> linear readout of firing rates."""

    def __init__(self, n_in: int, hidden: int, out_dim: int, beta: float = 0.9):
        super().__init__()
        self.fc_in = nn.Linear(n_in, hidden)
        self.lif = snn.RLeaky(beta=beta, linear_features=hidden, spike_grad=surrogate.fast_sigmoid(), reset_mechanism="zero")
        self.fc_out = nn.Linear(hidden, out_dim)

    def rates(self, x: torch.Tensor) -> torch.Tensor:
        """Firing rate of every recurrent neuron, (B, hidden), for rasters ``x`` (B, T, C)."""
        spk, mem = self.lif.init_rleaky()
        total = 0.0
        for t in range(x.shape[1]):
            spk, mem = self.lif(self.fc_in(x[:, t]), spk, mem)
            total = total + spk
        return total / x.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.rates(x))


def stack_rasters(rasters: list[np.ndarray]) -> torch.Tensor:
    """Zero-pad (T_i, C) rasters to a common T: a float tensor (N, T_max, C)."""
    t_max = max(r.shape[0] for r in rasters)
    out = np.zeros((len(rasters), t_max, rasters[0].shape[1]), dtype=np.float32)
    for i, r in enumerate(rasters):
        out[i, : r.shape[0]] = r
    return torch.from_numpy(out)


def _batches(n: int, size: int, rng: np.random.Generator):
    order = rng.permutation(n)
    for s in range(0, n, size):
        if n - s >= 2:
            yield order[s : s + size]


def train_classifier(
    x_train: torch.Tensor, y_train: np.ndarray, x_val: torch.Tensor, y_val: np.ndarray, x_test: torch.Tensor,
    y_test: np.ndarray, n_classes: int, hidden: int, beta: float, epochs: int, lr: float, batch_size: int, seed: int,
) -> dict:
    """BPTT-train a spiking-RNN classifier; select the epoch on validation accuracy; test once."""
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 41])
    net = SpikingRNN(x_train.shape[2], hidden, n_classes, beta)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    yt = torch.as_tensor(y_train)
    best, best_state = -1.0, None
    t0 = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for idx in _batches(len(yt), batch_size, rng):
            loss = F.cross_entropy(net(x_train[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = float((net(x_val).argmax(1).numpy() == y_val).mean())
        if acc > best:
            best, best_state = acc, {k: v.clone() for k, v in net.state_dict().items()}
    train_s = time.perf_counter() - t0
    net.load_state_dict(best_state)
    with torch.no_grad():
        test = float((net(x_test).argmax(1).numpy() == y_test).mean())
    return {"test_accuracy": test, "val_accuracy": best, "train_s": train_s}


def train_contrastive(
    xa: torch.Tensor, xb: torch.Tensor, y: np.ndarray, val: tuple, test_seen: tuple, test_unseen: tuple,
    hidden: int, beta: float, dim: int, temperature: float, epochs: int, lr: float, batch_size: int, seed: int,
) -> dict:
    """BPTT-train a spiking-RNN pair (one per modality) with the symmetric InfoNCE loss on class-paired
    samples ``(xa[i], xb[i], y[i])``; select on the validation pairs; retrieval on seen and unseen test pairs.

    ``val``, ``test_seen``, ``test_unseen`` are ``(xa, xb, y)`` tuples of aligned pairs.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 43])
    na, nb = SpikingRNN(xa.shape[2], hidden, dim, beta), SpikingRNN(xb.shape[2], hidden, dim, beta)
    params = list(na.parameters()) + list(nb.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    yt = torch.as_tensor(y)

    def retrieval(pairs):
        with torch.no_grad():
            za, zb = na(pairs[0]).numpy(), nb(pairs[1]).numpy()
        return cross_modal_retrieval(za, pairs[2], zb, pairs[2])

    best, best_state = -1.0, None
    t0 = time.perf_counter()
    for _ in range(epochs):
        na.train(), nb.train()
        for idx in _batches(len(yt), batch_size, rng):
            loss = symmetric_info_nce(na(xa[idx]), nb(xb[idx]), temperature, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        na.eval(), nb.eval()
        r = retrieval(val)
        score = (r.a_to_b + r.b_to_a) / 2
        if score > best:
            best = score
            best_state = ({k: v.clone() for k, v in na.state_dict().items()}, {k: v.clone() for k, v in nb.state_dict().items()})
    train_s = time.perf_counter() - t0
    na.load_state_dict(best_state[0]), nb.load_state_dict(best_state[1])
    rs, ru = retrieval(test_seen), retrieval(test_unseen)
    return {"seen": rs.as_dict(), "unseen": ru.as_dict(), "val_score": best, "train_s": train_s}
