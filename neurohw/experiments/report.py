"""The run's report: report.md and its figures (matplotlib, Agg backend, PNG).

Figures: conductance histogram of the encoder crossbars, spike raster of one sample, training
curves, confusion matrix (classification), retrieval matrices seen/unseen (zero-shot), energy
breakdown. Each function writes one file and returns its name.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neurohw.experiments.results import ConductanceMap, SeedResult, SpikeSample  # noqa: E402
from neurohw.heads.training import TrainHistory  # noqa: E402


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


def _chip_lines(chip: dict | None) -> list[str]:
    """The chip a run over a link ran on, and the device facts where it differs from the YAML's."""
    if not chip:
        return []
    lines = ["## Chip", "", f"Ran on chip {chip['chip_id']} (`{chip['name']}`) at `{chip['url']}`: {chip['tiles']} tiles of "
             f"{chip['rows']} x {chip['cols']} cells, ADC {chip['adc_bits']} bits (LSB {_fmt(chip['lsb_us'])} uS).", ""]  # fmt: skip
    if chip["facts_differ"]:
        lines += [f"Device facts where the chip differs from device `{chip['device']}` (the numbers above are the chip's):", "",
                  "| fact | chip | device |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {k} | {v['chip']} | {v['device']} |" for k, v in chip["facts_differ"].items()]
    else:
        lines.append(f"Every device fact the chip states equals device `{chip['device']}`'s.")
    return lines + [""]


def classification_section(metrics: dict) -> list[str]:
    """report.md's classification section: test accuracy over seeds and the readouts' selection."""
    lines: list[str] = []
    lines += ["## Classification", "", "| | mean | std | chance |", "|---|---|---|---|"]
    lines.append(f"| test accuracy | {_fmt(metrics['test_accuracy'])} | {_fmt(metrics.get('test_accuracy_std'))} | {_fmt(metrics.get('chance'))} |")
    lines += _selection_lines(metrics.get("per_seed") or [])
    lines.append("")
    return lines


def zero_shot_section(metrics: dict) -> list[str]:
    """report.md's zero-shot section: top-1 retrieval per class set and direction, baselines, rotations."""
    lines: list[str] = []
    zs, sd, ch = metrics["zero_shot"], metrics["zero_shot_std"], metrics["chance"]
    sel = "test accuracy (optimistic)" if metrics.get("optimistic") else "seen-class validation split only"
    pairing = metrics.get("pairing", "class")
    lines += [
        "## Zero-shot cross-modal retrieval (top-1)",
        "",
        f"Model selection: {sel}. Mean and std over {len(metrics['seeds'])} seed(s). "
        f"a = `{metrics['modalities'][0]}`, b = `{metrics['modalities'][1]}`. Pairing: `{pairing}`.",
        "",
    ]
    if pairing == "class":
        lines += [
            "Class pairing: the two modalities share only the class, so nothing in the seen-class data tells the true "
            "assignment of the unseen classes from a permutation of them; **unseen retrieval at chance is the expected "
            "outcome** (docs/experiments.md, \"The class-pairing limit\"). The instance-paired `zero_shot_paired` "
            "experiment (`neurohw run zero_shot_paired`) shows the transfer where the data allow it.",
            "",
        ]
    lines += [

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
        lines += ["", "Class-split rotation (mean over seeds):", ""]
        lines += ["| unseen | seen a->b | seen b->a | unseen a->b | unseen b->a |", "|---|---|---|---|---|"]
        for r in metrics["rotations"]:
            z = r["zero_shot"]
            lines.append(
                f"| {r['unseen_classes']} | {_fmt(z['seen']['a_to_b'])} | {_fmt(z['seen']['b_to_a'])}"
                f" | {_fmt(z['unseen']['a_to_b'])} | {_fmt(z['unseen']['b_to_a'])} |"
            )
    if metrics.get("over_splits"):
        o = metrics["over_splits"]
        names = {"zero_shot": "contrastive heads, reservoir features", "zero_shot_prototypical": "prototypical heads, reservoir features",
                 "raw_baseline": "contrastive heads, binned raw events (no reservoir)"}
        lines += ["", "Over every seed and class split (main split and rotations): mean ± std of top-1 retrieval.", "",
                  "| method | n | seen a->b | seen b->a | unseen a->b | unseen b->a |", "|---|---|---|---|---|---|"]
        for key, label in names.items():
            if key in o:
                mu, sd = o[key]["mean"], o[key]["std"]
                cells = " | ".join(f"{_fmt(mu[s][d])} ± {_fmt(sd[s][d])}" for s in ("seen", "unseen") for d in ("a_to_b", "b_to_a"))
                lines.append(f"| {label} | {o[key]['n']} | {cells} |")
        cs, cu = _fmt(o["chance"]["seen"]), _fmt(o["chance"]["unseen"])
        lines.append(f"| chance | | {cs} | {cs} | {cu} | {cu} |")
    lines.append("")
    return lines


def write_report(path: Path, metrics: dict, figures: list[str], config_text: str, task_section: list[str]) -> None:
    """The run's report (report.md at ``path``): the numbers of metrics.json in tables (the
    task's own section given as ``task_section``), the figures, the resolved config."""
    lines = [f"# Run report: {metrics.get('name')}", ""]
    lines += [f"- task: `{metrics['task']}`", f"- seeds: {metrics['seeds']}", f"- neurohw {metrics['neurohw_version']}", ""]
    if metrics.get("optimistic"):
        lines += [
            "> **OPTIMISTIC**: checkpoints were selected on TEST accuracy (seen and unseen), as the reference code did "
            "(`zero_shot.selection: test_optimistic`). These numbers overstate what a model chosen without test data gets.",
            "",
        ]
    lines += task_section
    if metrics.get("baselines"):
        lines += ["## Trainable spiking-RNN baseline (snntorch, BPTT)", "", "| | value |", "|---|---|"]
        for k, v in metrics["baselines"].items():
            lines.append(f"| {k} | {_fmt(v) if not isinstance(v, dict) else v} |")
        lines.append("")
    lines += _chip_lines(metrics.get("chip"))
    e, t = metrics.get("energy", {}), metrics.get("timing", {})
    lines += ["## Energy and time", "", "| quantity | value |", "|---|---|"]
    for k, v in {**e, **{f"timing.{k}": v for k, v in t.items()}}.items():
        lines.append(f"| {k} | {_fmt(v)} |")
    lines += ["", "Energy: encoder from the crossbar energy ledger (device energy table); head = MACs x E_MAC; "
              "digital baseline = the same encoder and head as digital MACs. See metrics.json for the constants.", ""]
    if figures:
        lines += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    lines += ["## Resolved configuration", "", "```yaml", config_text.rstrip(), "```", ""]
    path.write_text("\n".join(lines))
