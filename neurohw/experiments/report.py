"""The run's report: report.md and its figures (matplotlib, Agg backend, PNG).

Figures: conductance histogram of the encoder crossbars, spike raster of one sample, training
curves, confusion matrix (classification), retrieval matrices seen/unseen (zero-shot), energy
breakdown. Each function writes one file and returns its name.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neurohw.heads.training import TrainHistory  # noqa: E402


def _save(fig, folder: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(folder / name, dpi=110)
    plt.close(fig)
    return name


def plot_conductances(folder: Path, maps: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """Histogram of formed-cell conductances (uS) of every crossbar, G+ and G- together."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, (gp, gn) in maps.items():
        g = np.concatenate([np.ravel(gp), np.ravel(gn)])
        ax.hist(g, bins=80, histtype="step", label=f"{label} (n={g.size})")
    ax.set_xlabel("conductance (uS)")
    ax.set_ylabel("cells")
    ax.set_yscale("log")
    ax.set_title("encoder crossbar conductances (G+ and G-)")
    ax.legend(fontsize=7)
    return _save(fig, folder, "conductance_histogram.png")


def plot_spike_raster(folder: Path, rasters: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> str:
    """Input raster and reservoir spikes (or binned spike counts) of one sample per modality."""
    fig, axes = plt.subplots(2, len(rasters), figsize=(5 * len(rasters), 5), squeeze=False)
    for j, (label, (inp, out)) in enumerate(rasters.items()):
        t, c = np.nonzero(inp)
        axes[0, j].scatter(t, c, s=1, c="k")
        axes[0, j].set_title(f"{label}: input events (time bin x channel)", fontsize=9)
        axes[0, j].set_ylabel("input channel")
        if out is not None:
            t, n = np.nonzero(out)
            axes[1, j].scatter(t, n, s=1, c="tab:red")
        axes[1, j].set_title(f"{label}: reservoir spikes", fontsize=9)
        axes[1, j].set_xlabel("time bin")
        axes[1, j].set_ylabel("neuron")
    return _save(fig, folder, "spike_raster.png")


def plot_training_curves(folder: Path, curves: dict[str, TrainHistory]) -> str:
    """Training loss and validation score per epoch; the selected epoch marked."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for label, h in curves.items():
        ax1.plot(h.train_loss, label=label)
        if h.val_score:
            ax2.plot(h.val_score, label=label)
            ax2.axvline(h.best_epoch, ls=":", c="gray")
    ax1.set_xlabel("epoch"), ax1.set_ylabel("training loss"), ax1.legend(fontsize=7)
    ax2.set_xlabel("epoch"), ax2.set_ylabel("validation score"), ax2.legend(fontsize=7)
    ax2.set_title("dotted: selected epoch", fontsize=8)
    return _save(fig, folder, "training_curves.png")


def plot_matrix(folder: Path, name: str, matrix: np.ndarray, classes: list[str], title: str, xlabel: str, ylabel: str) -> str:
    """A class-by-class matrix (confusion or retrieval) with its values written in."""
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * n, 0.8 + 0.45 * n))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), classes), ax.set_yticks(range(n), classes)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title, fontsize=9)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                v = matrix[i, j]
                ax.text(j, i, f"{v:.2f}" if isinstance(v, float) else str(v), ha="center", va="center", fontsize=6,
                        color="white" if v > 0.5 * matrix.max() else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, folder, f"{name}.png")


def plot_energy(folder: Path, energy: dict) -> str:
    """Energy per sample (J): analog encoder + digital head, beside the all-digital baseline."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    enc, head, dig = energy.get("encoder_j_per_sample"), energy.get("head_j_per_sample"), energy.get("digital_baseline_j_per_sample")
    ax.bar(["in-memory LSM"], [enc or 0.0], label="encoder (crossbar + ADC)")
    ax.bar(["in-memory LSM"], [head or 0.0], bottom=[enc or 0.0], label="digital head")
    ax.bar(["digital"], [dig or 0.0], color="gray", label="digital baseline (encoder + head)")
    ax.set_ylabel("energy per sample (J)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    return _save(fig, folder, "energy_breakdown.png")


def _fmt(v, digits=3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e-2 and v != 0 else f"{v:.{digits}f}"
    return str(v)


def _selection_lines(per_seed: list[dict]) -> list[str]:
    """The readout, the features it read, and how it was selected (training data only)."""
    if not per_seed:
        return []
    first = per_seed[0]
    lines = []
    cv = [p["cv_accuracy"] for p in per_seed if p.get("cv_accuracy") is not None]
    if cv:
        sd = float(np.std(cv, ddof=1)) if len(cv) > 1 else 0.0
        lines.append(f"| {first.get('cv_folds')}-fold CV accuracy (training split) | {_fmt(float(np.mean(cv)))} | {_fmt(sd)} | |")
    lines.append("")
    if first.get("readout_features") is not None:
        lines.append(f"Readout: `{first.get('readout', 'linear')}` on the reservoir features {first['readout_features']} only "
                     "(no input-to-readout connection).")
    if first.get("alpha") is not None:
        alphas = ", ".join(f"seed {p['seed']}: {p['alpha']:g}" for p in per_seed)
        lines.append(f"Ridge alpha chosen by {first['cv_folds']}-fold cross-validation on the training split only ({alphas}); "
                     "the test split was used once, for the accuracy above.")
    elif first.get("val_accuracy") is not None:
        lines.append(f"Epoch selected on a validation split of the training data ({first.get('n_val')} samples).")
    return lines


def write_report(folder: Path, metrics: dict, figures: list[str], config_text: str) -> None:
    """report.md: the numbers of metrics.json in tables, the figures, the resolved config."""
    lines = [f"# Run report: {metrics.get('name')}", ""]
    lines += [f"- task: `{metrics['task']}`", f"- seeds: {metrics['seeds']}", f"- neurohw {metrics['neurohw_version']}", ""]
    if metrics.get("optimistic"):
        lines += [
            "> **OPTIMISTIC**: checkpoints were selected on TEST accuracy (seen and unseen), as the reference code did "
            "(`zero_shot.selection: test_optimistic`). These numbers overstate what a model chosen without test data gets.",
            "",
        ]
    if "test_accuracy" in metrics:
        lines += ["## Classification", "", "| | mean | std | chance |", "|---|---|---|---|"]
        lines.append(f"| test accuracy | {_fmt(metrics['test_accuracy'])} | {_fmt(metrics.get('test_accuracy_std'))} | {_fmt(metrics.get('chance'))} |")
        lines += _selection_lines(metrics.get("per_seed") or [])
        lines.append("")
    if "zero_shot" in metrics:
        zs, sd, ch = metrics["zero_shot"], metrics["zero_shot_std"], metrics["chance"]
        sel = "test accuracy (optimistic)" if metrics.get("optimistic") else "seen-class validation split only"
        lines += [
            "## Zero-shot cross-modal retrieval (top-1)",
            "",
            f"Model selection: {sel}. Mean and std over {len(metrics['seeds'])} seed(s). "
            f"a = `{metrics['modalities'][0]}`, b = `{metrics['modalities'][1]}`.",
            "",
            "| classes | a->b | b->a | chance |",
            "|---|---|---|---|",
        ]
        for s in ("seen", "unseen"):
            lines.append(
                f"| {s} {metrics['classes'][s]} | {_fmt(zs[s]['a_to_b'])} ± {_fmt(sd[s]['a_to_b'])} | "
                f"{_fmt(zs[s]['b_to_a'])} ± {_fmt(sd[s]['b_to_a'])} | {_fmt(ch[s])} |"
            )
        if "zero_shot_prototypical" in metrics:
            p, ps = metrics["zero_shot_prototypical"], metrics["zero_shot_prototypical_std"]
            lines += ["", "Prototypical-network baseline (same features, same selection):", "", "| classes | a->b | b->a |", "|---|---|---|"]
            for s in ("seen", "unseen"):
                lines.append(f"| {s} | {_fmt(p[s]['a_to_b'])} ± {_fmt(ps[s]['a_to_b'])} | {_fmt(p[s]['b_to_a'])} ± {_fmt(ps[s]['b_to_a'])} |")
        if metrics.get("rotations"):
            lines += ["", "Class-split rotation (mean over seeds):", "", "| unseen | seen a->b | seen b->a | unseen a->b | unseen b->a |", "|---|---|---|---|---|"]
            for r in metrics["rotations"]:
                z = r["zero_shot"]
                lines.append(f"| {r['unseen_classes']} | {_fmt(z['seen']['a_to_b'])} | {_fmt(z['seen']['b_to_a'])} | {_fmt(z['unseen']['a_to_b'])} | {_fmt(z['unseen']['b_to_a'])} |")
        lines.append("")
    if metrics.get("baselines"):
        lines += ["## Trainable spiking-RNN baseline (snntorch, BPTT)", "", "| | value |", "|---|---|"]
        for k, v in metrics["baselines"].items():
            lines.append(f"| {k} | {_fmt(v) if not isinstance(v, dict) else v} |")
        lines.append("")
    e, t = metrics.get("energy", {}), metrics.get("timing", {})
    lines += ["## Energy and time", "", "| quantity | value |", "|---|---|"]
    for k, v in {**e, **{f"timing.{k}": v for k, v in t.items()}}.items():
        lines.append(f"| {k} | {_fmt(v)} |")
    lines += ["", "Energy: encoder from the crossbar energy ledger (device energy table); head = MACs x E_MAC; "
              "digital baseline = the same encoder and head as digital MACs. See metrics.json for the constants.", ""]
    if figures:
        lines += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    lines += ["## Resolved configuration", "", "```yaml", config_text.rstrip(), "```", ""]
    (folder / "report.md").write_text("\n".join(lines))
