"""The task types (neurohw.experiments.tasks): one per name the schema accepts; the heads they
rebuild compute what the trained modules computed; their summaries against numpy; their head
rules and default kinds through the schema."""

from __future__ import annotations

import statistics
import typing

import numpy as np
import pytest
import torch

from neurohw.experiments.schema import ExperimentConfig, parse_config
from neurohw.experiments.task_rules import RULES
from neurohw.experiments.tasks import TASKS, Classify, LinearProbe, ZeroShot, task_of
from neurohw.heads.projection import ProjectionPair
from neurohw.heads.readout import Readout
from neurohw.heads.ridge import RidgeReadout


def _cfg(task: str, **head) -> ExperimentConfig:
    mods = ["img", "snd"] if task == "zero_shot" else ["img"]
    raw = {"task": task, "data": {m: {"dataset": "digits-dvs", "binning": {"n_bins": 10}} for m in mods},
           "reservoir": {m: {"n_neurons": 16, "scale": 0.07} for m in mods}, "head": head}
    return parse_config(raw, "test")


def _state(prefix: str, module: torch.nn.Module) -> dict:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def _randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every weight and buffer set to seeded random values (std positive), so a rebuilt head
    that loads them differs from a fresh module."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            t.copy_(torch.rand(t.shape, generator=g) + 0.5 if name.endswith("std") else torch.randn(t.shape, generator=g))
    return module.eval()


def test_the_registry_holds_every_task_the_schema_accepts():
    names = typing.get_args(ExperimentConfig.model_fields["task"].annotation)
    assert set(TASKS) == set(names) == set(RULES)
    assert all(isinstance(TASKS[n], type(RULES[n])) for n in names)  # each task carries the rules the schema checks
    assert [type(TASKS[n]) for n in ("classify", "linear_probe", "zero_shot")] == [Classify, LinearProbe, ZeroShot]
    assert task_of("zero_shot") is TASKS["zero_shot"] and task_of(_cfg("classify")) is TASKS["classify"]


@pytest.mark.parametrize(("task", "head", "kind"), [
    ("classify", {}, "linear"), ("classify", {"hidden": [8]}, "mlp"), ("classify", {"kind": "ridge"}, "ridge"),
    ("linear_probe", {}, "linear"), ("zero_shot", {}, "projection"),
])
def test_default_head_kinds(task, head, kind):
    assert _cfg(task, **head).head_kind == kind


@pytest.mark.parametrize(("task", "head", "message"), [
    ("classify", {"kind": "projection"}, "task classify takes head.kind linear, mlp or ridge, got 'projection'"),
    ("linear_probe", {"kind": "mlp"}, "task linear_probe is a linear classifier"),
    ("linear_probe", {"hidden": [4]}, "task linear_probe is a linear classifier"),
    ("zero_shot", {"kind": "ridge"}, "task zero_shot trains projection heads; head.kind 'ridge' does not apply"),
])
def test_heads_a_task_does_not_train_are_refused(task, head, message):
    from neurohw.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        _cfg(task, **head)


@pytest.mark.parametrize(("task", "head", "build"), [
    ("classify", {"kind": "mlp", "hidden": [7, 5]}, lambda: Readout(6, 3, [7, 5])),
    ("classify", {"kind": "mlp"}, lambda: Readout(6, 4, [128])),
    ("classify", {}, lambda: Readout(6, 3, [])),
    ("classify", {"kind": "ridge"}, lambda: RidgeReadout(6, 5)),
    ("linear_probe", {}, lambda: Readout(6, 2, [])),
])
def test_a_rebuilt_readout_computes_what_the_trained_one_did(task, head, build):
    cfg = _cfg(task, **head)
    trained = _randomize(build(), 1)
    [(name, modality, module, output)] = task_of(cfg).rebuild_heads(cfg, _state("readout", trained))
    assert (name, modality, output) == ("readout", 0, "logits")
    x = torch.randn(9, 6, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(module(x), trained(x), rtol=0, atol=0)


@pytest.mark.parametrize("prototypical", [False, True])
def test_rebuilt_projection_pairs_compute_what_the_trained_ones_did(prototypical):
    cfg = _cfg("zero_shot", dim=4, hidden=[5], normalize=True)
    cfg = cfg.model_copy(update={"zero_shot": cfg.zero_shot.model_copy(update={"prototypical_baseline": prototypical})})
    names = ["contrastive", "prototypical"] if prototypical else ["contrastive"]
    pairs = {n: _randomize(ProjectionPair(6, 3, 4, [5], True), k) for k, n in enumerate(names)}
    state = {k: v for n, p in pairs.items() for k, v in _state(n, p).items()}
    heads = task_of(cfg).rebuild_heads(cfg, state)
    assert [(h[0], h[1], h[3]) for h in heads] == [(n, i, "projection") for n in names for i in (0, 1)]
    xa, xb = torch.randn(4, 6), torch.randn(4, 3)
    for name, modality, module, _ in heads:
        ref = pairs[name].a if modality == 0 else pairs[name].b
        x = xa if modality == 0 else xb
        torch.testing.assert_close(module(x), ref(x), rtol=0, atol=0)


def test_weights_that_do_not_fit_the_config_are_refused():
    cfg = _cfg("classify", kind="mlp", hidden=[7])
    with pytest.raises((KeyError, RuntimeError)):
        task_of(cfg).rebuild_heads(cfg, _state("readout", Readout(6, 3, [9])))
    with pytest.raises(KeyError):
        task_of(cfg).rebuild_heads(cfg, _state("readout", Readout(6, 3, [])))


def test_summaries_are_means_and_sample_stds_over_seeds():
    acc = [0.5, 0.75, 0.625]
    m = TASKS["classify"].summary(_cfg("classify"), [{"test_accuracy": a, "chance": 0.1} for a in acc])
    assert m == {"test_accuracy": pytest.approx(np.mean(acc)), "test_accuracy_std": pytest.approx(statistics.stdev(acc)), "chance": 0.1}
    cfg = _cfg("zero_shot")
    per_seed = [{"zero_shot": {"seen": {"a_to_b": a, "b_to_a": a / 2}, "unseen": {"a_to_b": 1 - a, "b_to_a": 0.5}},
                 "chance": {"seen": 0.125, "unseen": 0.5}, "seen_classes": ["0"], "unseen_classes": ["8", "9"]} for a in acc]
    m = TASKS["zero_shot"].summary(cfg, per_seed)
    assert m["zero_shot"]["seen"]["b_to_a"] == pytest.approx(np.mean(acc) / 2)
    assert m["zero_shot_std"]["unseen"]["a_to_b"] == pytest.approx(statistics.stdev([1 - a for a in acc]))
    assert m["zero_shot_std"]["unseen"]["b_to_a"] == 0.0
    assert (m["selection"], m["optimistic"], m["pairing"]) == ("validation", False, "class")
    assert "over_splits" not in m and "rotations" not in m


def test_validation_and_final_scores():
    ridge, mlp, zs = _cfg("classify", kind="ridge"), _cfg("classify", hidden=[4]), _cfg("zero_shot")
    assert [task_of(c).validation_metric(c) for c in (ridge, mlp, zs)] == ["cv_accuracy", "val_accuracy", "zero_shot.val_seen.mean"]
    for c in (ridge, mlp, zs):
        assert task_of(c).validation_metric(c) in task_of(c).metric_names(c)
        assert set(task_of(c).default_metrics(c)) <= task_of(c).metric_names(c)
    assert task_of(zs).final_score({"zero_shot.seen.a_to_b": 0.5, "zero_shot.seen.b_to_a": 0.25}) == 0.375
    assert task_of(zs).final_score({"zero_shot.seen.a_to_b": 0.5}) is None
    assert task_of(mlp).final_score({"test_accuracy": 0.5}) == 0.5 and task_of(mlp).final_score({}) is None
