"""The experiment tasks as types: what ``task: classify | linear_probe | zero_shot`` in a YAML
means to every part of the framework. A :class:`Task` has its config rules (modalities, head
kinds: :mod:`.task_rules`, which the schema checks) and knows how it runs one seed, how its
per-seed metrics fold into metrics.json, its section of report.md, how a finished run's heads
are rebuilt from their weights, the metrics it reports (for sweeps and searches) and which of
them is its validation score.

``TASKS`` maps the YAML name to the type; :func:`task_of` looks a config's task up. The YAML
and metrics.json keep the name (``cfg.task`` stays a string); callers ask the type, never
compare the name.

The runners and heads (torch) and the report writers (matplotlib) are imported inside the
methods that use them, so that a sweep or search file can be checked without loading them.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from neurohw.experiments.report import classification_section, zero_shot_section
from neurohw.experiments.stats import mean_std
from neurohw.experiments.task_rules import RULES, ClassifyRules, LinearProbeRules, TaskRules, ZeroShotRules

if TYPE_CHECKING:
    from neurohw.experiments.results import ModalityFeatures, TaskOutput
    from neurohw.experiments.schema import ExperimentConfig

#: the MLP readout's hidden widths when ``head.kind: mlp`` names none
DEFAULT_MLP_HIDDEN = [128]
#: the two retrieval directions: modality a's queries against b's gallery, and back
_DIRECTIONS = ("a_to_b", "b_to_a")


class Task(TaskRules):
    """One task: its config rules (:class:`~.task_rules.TaskRules`) and what it does; a
    subclass inherits its rules class and implements the abstract methods."""

    @abstractmethod
    def run(self, cfg: ExperimentConfig, feats: list[ModalityFeatures], seed: int, progress: bool,
            raw: list[ModalityFeatures] | None = None) -> TaskOutput:
        """Train and evaluate the task's heads on one run seed's features."""

    def raw_baseline_bins(self, cfg: ExperimentConfig) -> int | None:
        """Time bins of the no-reservoir raw-event baseline the task also trains (None: none)."""
        return None

    @abstractmethod
    def summary(self, cfg: ExperimentConfig, per_seed: list[dict]) -> dict:
        """The task's part of metrics.json: its per-seed metrics folded into means over seeds."""

    @abstractmethod
    def report_section(self, metrics: dict) -> list[str]:
        """The task's section of report.md (lines) from metrics.json."""

    @abstractmethod
    def rebuild_heads(self, cfg: ExperimentConfig, state: dict) -> list[tuple[str, int, object, str]]:
        """The trained heads of a run seed from their saved weights, built as the config trains
        them: ``(head name, modality index, module in eval mode, output name)``. Raises
        KeyError, RuntimeError or ValueError when the weights do not fit the config."""

    @abstractmethod
    def metric_names(self, cfg: ExperimentConfig) -> set[str]:
        """The task's flat metric names a run of ``cfg`` reports (sweep table columns)."""

    @abstractmethod
    def default_metrics(self, cfg: ExperimentConfig) -> list[str]:
        """The metrics a sweep plots when it names none: the test score and the validation score."""

    @abstractmethod
    def validation_metric(self, cfg: ExperimentConfig) -> str:
        """The flat metric a search's ``validation`` objective means for ``cfg``."""

    @abstractmethod
    def final_score_name(self) -> str:
        """The test-split score reported for a search's front member (never used to select)."""

    def final_score(self, metrics: dict) -> float | None:
        """:meth:`final_score_name`'s value in a run's flat metrics (None when missing)."""
        v = metrics.get(self.final_score_name())
        return None if v is None else float(v)


class Classify(ClassifyRules, Task):
    """One modality, a readout trained to name the class: linear, MLP or closed-form ridge."""

    def readout_hidden(self, cfg: ExperimentConfig) -> list[int]:
        """The readout's hidden widths (``[]``: linear; a ridge readout ignores them)."""
        return [] if cfg.head_kind == "linear" else (cfg.head.hidden or DEFAULT_MLP_HIDDEN)

    def run(self, cfg, feats, seed, progress, raw=None):
        from neurohw.experiments.classify import run_classify  # torch: only a run needs it

        return run_classify(feats[0].train, feats[0].test, cfg.head, self.readout_hidden(cfg), seed, progress)

    def summary(self, cfg, per_seed):
        m: dict = {}
        m["test_accuracy"], m["test_accuracy_std"] = mean_std([p["test_accuracy"] for p in per_seed])
        m["chance"] = per_seed[0]["chance"]
        return m

    def report_section(self, metrics):
        return classification_section(metrics)

    def rebuild_heads(self, cfg, state):
        from neurohw.heads.readout import Readout  # torch: only an export needs the heads
        from neurohw.heads.ridge import RidgeReadout  # torch

        d = int(state["readout.norm.mean"].shape[0])
        if cfg.head_kind == "ridge":
            module = RidgeReadout(d, int(state["readout.linear.weight"].shape[0]))
        else:
            hidden = self.readout_hidden(cfg)
            out = f"readout.net.{2 * len(hidden)}.weight"  # Readout: [Linear, ReLU] per hidden layer, then Linear
            module = Readout(d, int(state[out].shape[0]), hidden)
        module.load_state_dict({k[len("readout."):]: v for k, v in state.items() if k.startswith("readout.")})
        return [("readout", 0, module.eval(), "logits")]

    def metric_names(self, cfg):
        names = {"test_accuracy", "chance", "n_train", "n_val", "n_test"}
        return names | ({"cv_accuracy", "cv_folds", "alpha"} if cfg.head_kind == "ridge" else {"val_accuracy"})

    def validation_metric(self, cfg):
        return "cv_accuracy" if cfg.head_kind == "ridge" else "val_accuracy"

    def default_metrics(self, cfg):
        return ["test_accuracy", self.validation_metric(cfg)]

    def final_score_name(self):
        return "test_accuracy"


class LinearProbe(LinearProbeRules, Classify):
    """Classify with a linear readout only: how linearly separable the encoder's features are."""

    def readout_hidden(self, cfg):
        return []


class ZeroShot(ZeroShotRules, Task):
    """Two modalities, contrastive projection heads (and optionally prototypical ones) trained on
    the seen classes; top-1 cross-modal retrieval on seen and unseen classes."""

    def objectives(self, cfg: ExperimentConfig) -> tuple[str, ...]:
        """The projection pairs trained: ``contrastive``, and ``prototypical`` with its baseline."""
        return ("contrastive", "prototypical") if cfg.zero_shot.prototypical_baseline else ("contrastive",)

    def raw_baseline_bins(self, cfg):
        return cfg.zero_shot.raw_baseline_bins

    def run(self, cfg, feats, seed, progress, raw=None):
        """The main class split, every rotation, and with ``raw`` (the no-reservoir baseline's
        features) the same heads on them for every split (under ``raw_baseline``)."""
        from neurohw.experiments.zero_shot import run_zero_shot  # torch: only a run needs it

        a, b = feats
        args = (a.train, b.train, a.test, b.test, cfg.head, cfg.zero_shot, seed)
        objectives = self.objectives(cfg)
        out = run_zero_shot(*args, progress=progress, objectives=objectives)
        splits = [None] + [[str(c) for c in rot] for rot in cfg.zero_shot.rotations or []]
        if cfg.zero_shot.rotations:
            rots = []
            for unseen in splits[1:]:
                r = run_zero_shot(*args, progress=progress, unseen=unseen, objectives=objectives)
                rots.append(_split_keys(r.metrics))
            out.metrics["rotations"] = rots
        if raw is not None:
            ra, rb = raw
            raw_args = (ra.train, rb.train, ra.test, rb.test, cfg.head, cfg.zero_shot, seed)
            out.metrics["raw_baseline"] = [_split_keys(run_zero_shot(*raw_args, progress=progress, unseen=u).metrics) for u in splits]
        return out

    def summary(self, cfg, per_seed):
        first = per_seed[0]
        m: dict = {}
        m["zero_shot"], m["zero_shot_std"] = _retrieval([p["zero_shot"] for p in per_seed])
        m["chance"] = first["chance"]
        m["classes"] = {"seen": first["seen_classes"], "unseen": first["unseen_classes"]}
        m["selection"] = cfg.zero_shot.selection
        m["optimistic"] = cfg.zero_shot.selection != "validation"
        m["pairing"] = cfg.zero_shot.pairing
        if "zero_shot_prototypical" in first:
            m["zero_shot_prototypical"], m["zero_shot_prototypical_std"] = _retrieval([p["zero_shot_prototypical"] for p in per_seed])
        if first.get("rotations"):
            rots = []
            for k, r in enumerate(first["rotations"]):
                mean, std = _retrieval([p["rotations"][k]["zero_shot"] for p in per_seed])
                rots.append({"unseen_classes": r["unseen_classes"], "zero_shot": mean, "zero_shot_std": std, "chance": r["chance"]})
            m["rotations"] = rots
        if first.get("rotations") or first.get("raw_baseline"):
            m["over_splits"] = _over_splits(per_seed)
        return m

    def report_section(self, metrics):
        return zero_shot_section(metrics)

    def rebuild_heads(self, cfg, state):
        from neurohw.heads.projection import ProjectionPair  # torch: only an export needs the heads

        heads = []
        for name in self.objectives(cfg):
            pair = ProjectionPair(int(state[f"{name}.a.norm.mean"].shape[0]), int(state[f"{name}.b.norm.mean"].shape[0]),
                                  cfg.head.dim, cfg.head.hidden, cfg.head.normalize)
            pair.load_state_dict({k[len(name) + 1:]: v for k, v in state.items() if k.startswith(f"{name}.")})
            heads += [(name, 0, pair.a.eval(), "projection"), (name, 1, pair.b.eval(), "projection")]
        return heads

    def metric_names(self, cfg):
        sets = ("seen", "unseen", "val_seen")
        names = {f"zero_shot.{s}.{d}" for s in sets for d in _DIRECTIONS} | {"zero_shot.val_seen.mean", "chance.seen", "chance.unseen"}
        if cfg.zero_shot.prototypical_baseline:
            names |= {f"zero_shot_prototypical.{s}.{d}" for s in sets for d in _DIRECTIONS}
        return names

    def validation_metric(self, cfg):
        return "zero_shot.val_seen.mean"

    def default_metrics(self, cfg):
        return ["zero_shot.seen.a_to_b", "zero_shot.unseen.a_to_b", "zero_shot.val_seen.a_to_b"]

    def final_score_name(self):
        return "zero_shot.seen.mean"

    def final_score(self, metrics):
        """Seen-class retrieval, the mean of both directions."""
        a, b = metrics.get("zero_shot.seen.a_to_b"), metrics.get("zero_shot.seen.b_to_a")
        return None if a is None or b is None else float((a + b) / 2)


#: the YAML name -> the task
TASKS: dict[str, Task] = {t.name: t for t in (Classify(), LinearProbe(), ZeroShot())}
if TASKS.keys() != RULES.keys():  # every task the schema accepts has a type, and no more
    raise ImportError(f"tasks {sorted(TASKS)} and task rules {sorted(RULES)} differ")


def task_of(cfg_or_name: ExperimentConfig | str) -> Task:
    """The task of a config (or a task name as metrics.json records it)."""
    name = cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.task
    return TASKS[name]


def _split_keys(metrics: dict) -> dict:
    """One class split's retrieval keys of a zero-shot run (kept per rotation and raw baseline)."""
    return {k: metrics[k] for k in ("seen_classes", "unseen_classes", "zero_shot", "zero_shot_prototypical", "chance", "pairing")
            if k in metrics}


def _retrieval(items: list[dict]) -> tuple[dict, dict]:
    """Mean and std of ``{seen|unseen: {a_to_b, b_to_a}}`` retrieval dicts."""
    mean: dict = {}
    std: dict = {}
    for s in ("seen", "unseen"):
        mean[s], std[s] = {}, {}
        for d in _DIRECTIONS:
            mean[s][d], std[s][d] = mean_std([it[s][d] for it in items])
    return mean, std


def _over_splits(per_seed: list[dict]) -> dict:
    """Retrieval mean and std over every (seed, class split) - the main split and each rotation -
    per method: ``zero_shot`` (contrastive heads on the reservoir features),
    ``zero_shot_prototypical`` and ``raw_baseline`` (the same heads on binned raw events), with
    the mean chance and the number of (seed, split) values."""
    runs: dict[str, list] = {"zero_shot": [], "zero_shot_prototypical": [], "raw_baseline": []}
    chance: dict[str, list] = {"seen": [], "unseen": []}
    for p in per_seed:
        splits = [p] + list(p.get("rotations") or [])
        for sp in splits:
            chance["seen"].append(sp["chance"]["seen"]), chance["unseen"].append(sp["chance"]["unseen"])
            for key in ("zero_shot", "zero_shot_prototypical"):
                if key in sp:
                    runs[key].append(sp[key])
        for sp in p.get("raw_baseline") or []:
            runs["raw_baseline"].append(sp["zero_shot"])
    out: dict = {"chance": {s: float(np.mean(v)) for s, v in chance.items()}}
    for key, items in runs.items():
        if items:
            mean, std = _retrieval(items)
            out[key] = {"mean": mean, "std": std, "n": len(items)}
    return out
