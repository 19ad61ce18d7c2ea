"""``neurohw devices``: list the device models, show one.

- ``neurohw devices list``: every device model on the search path (name, array, levels, read
  noise, ADC, inputs, drift) and its file.
- ``neurohw devices show NAME --out FILE.png [--seed S]``: the model's parameters (printed as
  resolved YAML) and a PNG with histograms of one array's sampled conductances (formed and
  unformed cells) and of the differential weights ``G+ - G-``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from neurohw.errors import UserError


def register(subparsers) -> None:
    """Add the ``devices`` group and its commands."""
    parser = subparsers.add_parser("devices", help="device models: list, show", description="device models (device_models/*.yaml): list them, show one")
    sub = parser.add_subparsers(dest="devices_command", metavar="COMMAND", parser_class=type(parser))
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    p_list = sub.add_parser("list", help="every device model and its main parameters")
    p_list.set_defaults(handler=cmd_list)

    p_show = sub.add_parser("show", help="print a model's parameters and plot sampled conductances and weights")
    p_show.add_argument("name", help="device name (see `neurohw devices list`) or a YAML path")
    p_show.add_argument("--out", required=True, help="the PNG file to write")
    p_show.add_argument("--seed", type=int, default=0, help="forming seed (default 0)")
    p_show.set_defaults(handler=cmd_show)


def _summary(dev) -> dict[str, str]:
    levels = "continuous" if dev.levels.step_us is None else f"{dev.levels.step_us:g} uS"
    adc = "none" if dev.adc.bits is None else f"{dev.adc.bits}-bit {dev.adc.gain}"
    inp = "analog" if dev.input.bits is None else f"{dev.input.bits}-bit {'bit-serial' if dev.input.bit_serial else 'amplitude'}"
    drift = f"nu={dev.drift.nu_mean:g}+-{dev.drift.nu_std:g}" if dev.drift.enabled else "off"
    noise = f"{100 * dev.read_noise.relative:g}%"
    if dev.read_noise.additive_us:
        noise += f" + {dev.read_noise.additive_us:g} uS"
    return {
        "name": dev.name,
        "array": f"{dev.array.rows}x{dev.array.cols}",
        "forming": f"p={dev.forming.probability:g} {dev.forming.formed.kind}",
        "levels": levels,
        "read noise": noise,
        "adc": adc,
        "input": inp,
        "drift": drift,
    }


def _bins(values: np.ndarray, step_us: float | None, n: int = 120) -> np.ndarray | int:
    """About ``n`` bins; on a level grid, edges between levels with a whole number of levels per
    bin (bins not aligned to the levels would show a false comb)."""
    if step_us is None or values.size == 0:
        return n
    lo, hi = float(values.min()), float(values.max())
    per_bin = max(1, int(np.ceil((hi - lo) / step_us / n)))
    width = per_bin * step_us
    start = (np.floor(lo / step_us) - 0.5) * step_us
    return start + width * np.arange(int(np.ceil((hi - start) / width)) + 2)


def cmd_list(args: argparse.Namespace) -> int:
    from neurohw.devices.model import list_devices, load_device

    names = list_devices()
    if not names:
        print("no device models found (device_models/*.yaml; NEUROHW_DEVICE_MODELS adds folders)")
        return 0
    rows = []
    for name in names:
        dev = load_device(name)
        rows.append({**_summary(dev), "file": dev.source_path})
    keys = list(rows[0])
    width = {k: max(len(k), *(len(r[k]) for r in rows)) for k in keys}
    print("  ".join(f"{k:<{width[k]}}" for k in keys).rstrip())
    for r in rows:
        print("  ".join(f"{r[k]:<{width[k]}}" for k in keys).rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from neurohw.crossbar import Crossbar
    from neurohw.devices.forming import differential_std
    from neurohw.devices.model import load_device
    from neurohw.paths import atomic_path

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: the plot is a PNG; give a file name ending in .png")
    dev = load_device(args.name)
    print(f"# {dev.source_path}")
    print(yaml.safe_dump(dev.model_dump(mode="json"), sort_keys=False).rstrip())

    xb = Crossbar.from_forming(dev, dev.array.rows, dev.tile_cols, scale=1.0, seed=args.seed)
    g = np.stack([xb.g_pos, xb.g_neg])
    formed = xb.formed
    dg = xb.g_pos - xb.g_neg
    print(
        f"# one {dev.array.rows}x{dev.array.cols} array, seed {args.seed}: formed {formed.mean():.4f}, "
        f"formed G {g[formed].mean():.3f} +- {g[formed].std():.3f} uS, "
        f"G+ - G- {dg.mean():.3f} +- {dg.std():.3f} uS (closed form std {differential_std(dev.forming):.3f})"
    )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    ax.hist(g[formed], bins=_bins(g[formed], dev.levels.step_us), color="tab:blue", alpha=0.8, label=f"formed ({formed.mean():.1%} of cells)")
    if (~formed).any():  # unformed cells sit at one value: a marker, not a histogram bar
        ax.axvline(dev.forming.unformed_us, color="tab:gray", ls="--", label=f"unformed, {dev.forming.unformed_us:g} uS ({(~formed).mean():.1%})")
    ax.set_xlabel("conductance G (uS)")
    ax.set_ylabel("cells")
    ax.set_title(f"{dev.name}: sampled conductances")
    ax.legend(frameon=False, loc="upper right", fontsize="small")
    ax = axes[1]
    ax.hist(dg.ravel(), bins=_bins(dg, dev.levels.step_us), color="tab:orange")
    ax.set_xlabel("differential weight G+ - G- (uS)")
    ax.set_ylabel("pairs")
    ax.set_title(f"mean {dg.mean():.2f}, std {dg.std():.2f} uS")
    fig.tight_layout()
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    print(f"# wrote {out}")
    return 0
