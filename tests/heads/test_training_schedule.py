"""Head training that converges: the learning-rate schedule against its closed form, gradient
clipping, the bounded learned temperature, and a separable toy contrastive problem on which the
loss falls and never climbs back above its running minimum by more than noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurohw.heads.losses import Temperature, symmetric_info_nce
from neurohw.heads.projection import ProjectionPair
from neurohw.heads.training import TrainSettings, lr_factor, train


def test_lr_factor_is_linear_warmup_then_half_cosine():
    total, warm = 100, 10
    assert [lr_factor(s, total, warm, "cosine") for s in range(warm)] == pytest.approx([(s + 1) / 10 for s in range(warm)])
    for s in (10, 32, 55, 77, 99):
        assert lr_factor(s, total, warm, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * (s - 10) / 90)))
    assert lr_factor(55, total, warm, "cosine") == pytest.approx(0.5)  # the cosine's midpoint
    assert [lr_factor(s, total, 0, "constant") for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert lr_factor(9, 10, 10, "cosine") == 1.0 and lr_factor(4, 10, 10, "cosine") == 0.5  # warmup = whole run
    with pytest.raises(ValueError):
        TrainSettings(warmup_epochs=-1)
    with pytest.raises(ValueError):
        TrainSettings(schedule="linear")


def test_the_optimiser_sees_the_scheduled_learning_rate_and_clipped_gradients(monkeypatch):
    """Loss = 1000 * w: every raw gradient has norm 1000; the optimiser must see it clipped to 0.5
    and the learning rate of lr_factor at each step."""
    module = torch.nn.Linear(1, 1, bias=False)
    seen_lr, seen_grad = [], []
    adam_step = torch.optim.Adam.step

    def spy(self, *a, **k):
        seen_lr.append(self.param_groups[0]["lr"])
        seen_grad.append(float(module.weight.grad.norm()))
        return adam_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    settings = TrainSettings(epochs=4, lr=0.01, batch_size=2, warmup_epochs=1, schedule="cosine", clip_grad_norm=0.5)
    train(module, lambda idx: 1000.0 * module.weight.sum(), 8, None, settings, np.random.default_rng(0))
    total = 16  # 4 epochs x 4 steps of 2
    assert seen_lr == pytest.approx([0.01 * lr_factor(s, total, 4, "cosine") for s in range(total)])
    assert seen_grad == pytest.approx([0.5] * total)


def test_learned_temperature_gets_a_gradient_and_stays_in_its_bounds():
    tau = Temperature(0.1, (0.05, 0.2))
    za = torch.nn.functional.normalize(torch.randn(16, 4), dim=1)
    loss = symmetric_info_nce(za, za, tau())  # aligned pairs: a smaller tau lowers the loss
    loss.backward()
    assert tau.log_tau.grad is not None and float(tau.log_tau.grad) > 0
    with torch.no_grad():
        tau.log_tau.fill_(math.log(1e-4))
    assert float(tau().detach()) == pytest.approx(0.05)
    with torch.no_grad():
        tau.log_tau.fill_(math.log(10.0))
    assert float(tau().detach()) == pytest.approx(0.2)
    fixed = Temperature(0.3)
    assert not fixed.log_tau.requires_grad and float(fixed()) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        Temperature(0.5, (0.05, 0.2))


def _toy(seed: int, n: int = 512):
    """Two modalities that are fixed random linear maps (+ noise) of one 6-D latent: a projection
    pair can align them exactly, so the InfoNCE loss of the pair targets can get near its floor."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 6))
    xa = z @ rng.normal(size=(6, 20)) + 0.05 * rng.normal(size=(n, 20))
    xb = z @ rng.normal(size=(6, 30)) + 0.05 * rng.normal(size=(n, 30))
    return xa.astype(np.float32), xb.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contrastive_loss_on_a_separable_toy_falls_and_does_not_climb_back(seed):
    xa, xb = _toy(seed)
    torch.manual_seed(seed)
    pair = ProjectionPair(xa.shape[1], xb.shape[1], dim=16, normalize=True)
    pair.a.norm.fit(xa), pair.b.norm.fit(xb)
    tau = Temperature(0.1, (0.02, 1.0))
    module = torch.nn.ModuleDict({"pair": pair, "tau": tau})
    ta, tb = torch.tensor(xa), torch.tensor(xb)

    def loss(idx):
        za, zb = pair(ta[idx], tb[idx])
        return symmetric_info_nce(za, zb, tau())

    with torch.no_grad():
        za, zb = pair(ta[:64], tb[:64])
        initial = float(symmetric_info_nce(za, zb, tau()))
    settings = TrainSettings(epochs=40, lr=3e-3, batch_size=64, weight_decay=1e-4, warmup_epochs=3, schedule="cosine")
    hist = train(module, loss, len(xa), None, settings, np.random.default_rng(seed))
    losses = np.array(hist.train_loss)
    assert losses[-1] < 0.25 * initial  # ln(64) = 4.16 at random; a solvable problem gets far below
    running_min = np.minimum.accumulate(losses)
    # after warmup no epoch's loss exceeds the best so far by more than noise (5 % of the start)
    assert np.all(losses[3:] - running_min[3:] <= 0.05 * initial)
    assert 0.02 <= float(tau().detach()) <= 1.0
