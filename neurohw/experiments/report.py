"""The run's report: report.md, its text from metrics.json (the task's section, model selection,
the chip a run ran on) with links to the figures neurohw.experiments.figures drew.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
