"""``neurohw data``: list the datasets, show a sample, fetch a dataset on request.

- ``neurohw data list``: every dataset, embedded or from files, present or not, and where.
- ``neurohw data show NAME [--split S] [--index I] --out FILE.png [--root DIR]``: an x-y event
  frame by polarity for a camera, a channel x time raster (cochleagram) for a cochlea.
- ``neurohw data fetch NAME [--root DIR]``: the only command that downloads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from neurohw.errors import UserError


def register(subparsers) -> None:
    """Add the ``data`` group and its commands."""
    parser = subparsers.add_parser("data", help="event datasets: list, show, fetch",
                                   description="event datasets: list them, plot a sample, fetch one on request")
    sub = parser.add_subparsers(dest="data_command", metavar="COMMAND", parser_class=type(parser))
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    p_list = sub.add_parser("list", help="every dataset, present or not, and where it is")
    p_list.add_argument("--root", help="the folder that holds file datasets (default: $NEUROHW_DATA or the cache)")
    p_list.set_defaults(handler=cmd_list)

    p_show = sub.add_parser("show", help="plot one sample as a PNG")
    p_show.add_argument("name", help="dataset name (see `neurohw data list`)")
    p_show.add_argument("--split", default="train", help="train or test (default train)")
    p_show.add_argument("--index", type=int, default=0, help="sample index, 0 to the number of samples - 1 (default 0)")
    p_show.add_argument("--out", required=True, help="the PNG file to write")
    p_show.add_argument("--root", help="folder that holds the dataset's files")
    p_show.set_defaults(handler=cmd_show)

    p_fetch = sub.add_parser("fetch", help="download a dataset (or generate an embedded one)")
    p_fetch.add_argument("name", help="dataset name (see `neurohw data list`)")
    p_fetch.add_argument("--root", help="folder to put it in (default: $NEUROHW_DATA or the cache)")
    p_fetch.set_defaults(handler=cmd_fetch)


def cmd_list(args: argparse.Namespace) -> int:
    from neurohw.data.registry import list_datasets

    rows = list_datasets(root=args.root)
    width = max(len(r.name) for r in rows)
    print(f"{'name':<{width}}  {'kind':<8}  {'modality':<8}  {'present':<7}  location")
    for r in rows:
        print(f"{r.name:<{width}}  {r.kind:<8}  {r.modality:<8}  {'yes' if r.present else 'no':<7}  {r.location}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from neurohw.data.registry import load_dataset
    from neurohw.paths import atomic_path

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: the plot is a PNG; give a file name ending in .png")
    if args.index < 0:  # Python would count from the end: a sample the user did not name
        raise UserError(f"--index {args.index}: a sample index is 0 or more (0 is the first sample)")
    ds = load_dataset(args.name, args.split, root=args.root)
    if args.index >= len(ds):
        raise UserError(f"--index {args.index} is out of range: {args.name}/{args.split} has {len(ds)} samples (0..{len(ds) - 1})")
    events, label = ds[args.index]
    title = f"{ds.name} {ds.split}[{args.index}]  class {ds.classes[label]}  {len(events)} events"
    fig = event_figure(events, ds.sensor_size, title)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    print(f"wrote {out}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from neurohw.data.registry import fetch_dataset

    where = fetch_dataset(args.name, root=args.root)
    print(f"{args.name}: ready at {where}")
    return 0


def event_figure(events: np.ndarray, sensor_size, title: str = ""):
    """A matplotlib Figure (Agg canvas, no pyplot state) of one sample.

    Cameras: the event count of each pixel, ON (p=1) in red and OFF (p=0) in blue. Cochleas:
    one dot per event at (time in ms, channel): a cochleagram raster.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width, height = int(sensor_size[0]), int(sensor_size[1])
    if events.dtype.names and "y" in events.dtype.names:
        rgb = np.zeros((height, width, 3))
        for p, colour in ((1, 0), (0, 2)):  # ON -> red, OFF -> blue
            sel = events["p"] == p
            counts = np.zeros((height, width))
            np.add.at(counts, (events["y"][sel], events["x"][sel]), 1)
            rgb[..., colour] = counts
        peak = rgb.max()
        ax.imshow(rgb / peak if peak else rgb, origin="upper", interpolation="nearest")
        ax.set_xlabel("x (pixel)")
        ax.set_ylabel("y (pixel)")
    else:
        t_ms = (events["t"] - (events["t"].min() if len(events) else 0)) / 1000.0
        ax.scatter(t_ms, events["x"], s=2, c="k", marker=".", linewidths=0)
        ax.set_ylim(-0.5, width - 0.5)
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("channel")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
