"""What each task asks of a config: how many modalities ``data`` names, which ``head.kind``
values it trains (and the one-line refusal of the others), the head kind it picks when the YAML
names none, whether it pairs two modalities, and the head the NIR export draws.

These are the rules the schema checks (:mod:`.schema` imports this module and nothing above
it). The task types of :mod:`.tasks` inherit them and add what a task does (run a seed, fold
metrics, write its report section, rebuild its heads); ``RULES`` and ``tasks.TASKS`` name the
same tasks (checked when :mod:`.tasks` is imported).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar


class TaskRules(ABC):
    """The config rules of one task; subclasses fill in the class attributes."""

    #: the YAML name (``task:``), also metrics.json's ``task``
    name: ClassVar[str]
    #: how many modalities ``data`` must name
    n_modalities: ClassVar[int]
    #: the ``head.kind`` values the task accepts (besides leaving it out)
    head_kinds: ClassVar[tuple[str, ...]]
    #: whether it pairs two modalities (cross-modal retrieval) rather than classifying one
    cross_modal: ClassVar[bool] = False
    #: the trained head the NIR export draws beside each modality's reservoir
    main_head: ClassVar[str]

    @abstractmethod
    def head_kind_error(self, kind: str | None) -> str:
        """The one-line message for a ``head.kind`` (and hidden layers) the task does not train."""

    def accepts_head(self, kind: str | None, hidden: list[int]) -> bool:
        return kind is None or kind in self.head_kinds

    @abstractmethod
    def default_head_kind(self, hidden: list[int]) -> str:
        """``head.kind`` when the YAML leaves it out."""


class ClassifyRules(TaskRules):
    """One modality, a readout trained to name the class: linear, MLP or closed-form ridge."""

    name = "classify"
    n_modalities = 1
    head_kinds = ("linear", "mlp", "ridge")
    main_head = "readout"

    def head_kind_error(self, kind: str | None) -> str:
        return f"task classify takes head.kind linear, mlp or ridge, got {kind!r}"

    def default_head_kind(self, hidden: list[int]) -> str:
        return "mlp" if hidden else "linear"


class LinearProbeRules(ClassifyRules):
    """Classify with a linear readout only: no hidden layers."""

    name = "linear_probe"
    head_kinds = ("linear",)

    def head_kind_error(self, kind: str | None) -> str:
        return "task linear_probe is a linear classifier: head.kind linear and no hidden layers"

    def accepts_head(self, kind: str | None, hidden: list[int]) -> bool:
        return super().accepts_head(kind, hidden) and not hidden

    def default_head_kind(self, hidden: list[int]) -> str:
        return "linear"


class ZeroShotRules(TaskRules):
    """Two modalities paired by class (or instance), contrastive projection heads."""

    name = "zero_shot"
    n_modalities = 2
    head_kinds = ("projection",)
    cross_modal = True
    main_head = "contrastive"

    def head_kind_error(self, kind: str | None) -> str:
        return f"task zero_shot trains projection heads; head.kind {kind!r} does not apply"

    def default_head_kind(self, hidden: list[int]) -> str:
        return "projection"


#: the YAML name -> the task's config rules
RULES: dict[str, TaskRules] = {r.name: r for r in (ClassifyRules(), LinearProbeRules(), ZeroShotRules())}


def rules_of(cfg_or_name: Any) -> TaskRules:
    """The rules of a config's task (or of a task name)."""
    return RULES[cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.task]
