"""The run's figures (matplotlib, Agg backend, PNG): conductance histogram of the encoder
crossbars, spike raster of one sample, training curves, confusion matrix (classification),
retrieval matrices seen/unseen (zero-shot), energy breakdown. Each function writes one file and
returns its name; :func:`draw_figures` draws every one a run has. report.md (neurohw.experiments.report)
links them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from neurohw.experiments.results import ConductanceMap, SeedResult, SpikeSample
from neurohw.heads.training import TrainHistory


def _save(fig, folder: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(folder / name, dpi=120)
    plt.close(fig)
    return name


def plot_conductances(folder: Path, maps: list[ConductanceMap]) -> str:
    """Histogram of the cell conductances (uS) of every crossbar, G+ and G- together."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for m in maps:
        g = np.concatenate([np.ravel(m.g_pos), np.ravel(m.g_neg)])
        ax.hist(g, bins=80, histtype="step", linewidth=1.2, label=f"{m.label} ({g.size:,} cells)")
    ax.set_xlabel("cell conductance (uS)")
    ax.set_ylabel("cells (log scale)")
    ax.set_yscale("log")
    ax.set_title("Encoder crossbar conductances (G+ and G- cells; unformed cells at the left)")
    ax.legend(fontsize=8)
    return _save(fig, folder, "conductance_histogram.png")


def plot_spike_raster(folder: Path, samples: list[SpikeSample]) -> str:
    """Input events and reservoir spikes of one test sample per modality (the spikes its
    features were computed from)."""
    fig, axes = plt.subplots(2, len(samples), figsize=(5.5 * len(samples), 6), squeeze=False)
    for j, smp in enumerate(samples):
        t, c = np.nonzero(smp.raster)
        axes[0, j].scatter(t, c, s=2, c="k", marker="|")
        axes[0, j].set_title(f"{smp.label}: input events ({len(t):,} active bins)", fontsize=10)
        axes[0, j].set_ylabel("input channel")
        axes[0, j].set_xlabel("time bin")
        t, n = np.nonzero(smp.spikes)
        axes[1, j].scatter(t, n, s=2, c="tab:red", marker="|")
        rate = smp.spikes.mean() if smp.spikes.size else 0.0
        axes[1, j].set_title(f"{smp.label}: reservoir spikes (mean rate {rate:.3f} per neuron per bin)", fontsize=10)
        axes[1, j].set_xlabel("time bin")
        axes[1, j].set_ylabel("neuron")
        for ax in axes[:, j]:
            ax.set_xlim(-0.5, max(len(smp.raster), 1) - 0.5)
    fig.suptitle("One test sample per modality", fontsize=11)
    return _save(fig, folder, "spike_raster.png")


def plot_training_curves(folder: Path, curves: dict[str, TrainHistory]) -> str:
    """Training loss and validation score per epoch; the selected epoch marked."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for label, h in curves.items():
        ax1.plot(np.arange(1, len(h.train_loss) + 1), h.train_loss, label=label)
        if h.val_score:
            line, = ax2.plot(np.arange(1, len(h.val_score) + 1), h.val_score, label=label)
            ax2.axvline(h.best_epoch + 1, ls=":", c=line.get_color())
    ax1.set_title("Training loss")
    ax1.set_xlabel("epoch"), ax1.set_ylabel("loss (training batches, mean)"), ax1.legend(fontsize=8)
    ax2.set_title("Validation score (dotted: the epoch kept)")
    ax2.set_xlabel("epoch"), ax2.set_ylabel("validation score (accuracy or retrieval, 0-1)"), ax2.legend(fontsize=8)
    return _save(fig, folder, "training_curves.png")


def plot_matrix(folder: Path, name: str, matrix: np.ndarray, classes: list[str], title: str, xlabel: str, ylabel: str) -> str:
    """A class-by-class matrix (confusion counts or retrieval fractions) with its values written in."""
    n = len(classes)
    side = max(4.2, 1.6 + 0.5 * n)
    fig, ax = plt.subplots(figsize=(side + 0.9, side))
    im = ax.imshow(matrix, cmap="Blues", vmin=0)
    ax.set_xticks(range(n), classes), ax.set_yticks(range(n), classes)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    ax.set_title("\n".join(textwrap.wrap(title, 40)), fontsize=10)
    if n <= 12:
        top = float(matrix.max()) if matrix.size else 0.0
        for i in range(n):
            for j in range(n):
                v = matrix[i, j]
                ax.text(j, i, f"{v:.2f}" if np.issubdtype(np.asarray(matrix).dtype, np.floating) else str(v), ha="center",
                        va="center", fontsize=8, color="white" if v > 0.5 * top else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of queries" if np.issubdtype(np.asarray(matrix).dtype, np.floating) else "samples")
    return _save(fig, folder, f"{name}.png")


def plot_energy(folder: Path, energy: dict) -> str:
    """Energy per test sample, microjoules: each part of the in-memory system beside the
    all-digital baseline, as separate bars on a log axis with their values written."""
    enc = energy.get("encoder_j_per_sample") or 0.0
    head = energy.get("head_j_per_sample") or 0.0
    dig = energy.get("digital_baseline_j_per_sample") or 0.0
    labels = ["encoder: crossbar reads + ADC", "head: digital MACs", "in-memory LSM total", "all-digital baseline"]
    values = np.array([enc, head, enc + head, dig]) * 1e6
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:gray"]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    y = np.arange(len(labels))[::-1]
    ax.barh(y, np.maximum(values, 1e-12), color=colors)
    for yi, v in zip(y, values):
        ax.text(v * 1.08 if v > 0 else 1e-12, yi, f"{v:.3g} uJ", va="center", fontsize=9)
    ax.set_yticks(y, labels)
    ax.set_xscale("log")
    positive = values[values > 0]
    if positive.size:
        ax.set_xlim(positive.min() / 3, positive.max() * 6)
    ax.set_xlabel("energy per test sample (uJ, log scale)")
    ratio = dig / (enc + head) if enc + head > 0 else float("nan")
    ax.set_title(f"Energy per sample: in-memory LSM vs all-digital ({ratio:.1f}x less)")
    return _save(fig, folder, "energy_breakdown.png")


def draw_figures(folder: Path, cfg, metrics: dict, first: SeedResult) -> list[str]:
    """Every figure of a run (its first seed's data for the per-seed ones); returns the file names."""
    out = first.output
    figs = []
    if first.maps:
        figs.append(plot_conductances(folder, first.maps))
    if first.samples:
        figs.append(plot_spike_raster(folder, first.samples))
    if out.curves:
        figs.append(plot_training_curves(folder, out.curves))
    mods = metrics["modalities"]
    for name, (mat, classes) in out.matrices.items():
        if name == "confusion":
            figs.append(plot_matrix(folder, "confusion_matrix", mat, classes, f"Test confusion (seed {first.seed})",
                                    "predicted class", "true class"))
        else:
            _, which, d1, _, d2 = name.split("_")
            src, dst = (mods[0], mods[1]) if d1 == "a" else (mods[1], mods[0])
            figs.append(plot_matrix(folder, name, mat, classes, f"{which.capitalize()} classes: top-1 retrieval {src} -> {dst} "
                                    f"(seed {first.seed})", f"retrieved class ({dst})", f"query class ({src})"))
    figs.append(plot_energy(folder, metrics["energy"]))
    return figs
