"""One event representation everywhere: tonic's structured dtypes, timestamps in microseconds.

Cameras (DVS, ATIS): ``x, y, t, p``; cochleas (N-TIDIGITS, SHD, digits-cochlea): ``t, x, p``.
The sensor size travels beside the events in tonic's order: ``(W, H, P)`` for cameras and
``(channels, 1, 1)`` for cochleas. Source of the dtypes: ``tonic.datasets.NMNIST.dtype`` and
``tonic.datasets.NTIDIGITS18.dtype`` (tonic 1.x).
"""

from __future__ import annotations

import numpy as np

#: camera events, tonic's NMNIST dtype; t in microseconds, p in {0, 1}
CAMERA_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
#: cochlea events, tonic's NTIDIGITS18 dtype; x is the frequency channel, t in microseconds
COCHLEA_DTYPE = np.dtype([("t", "<i8"), ("x", "<i8"), ("p", "<i8")])


def is_camera(events: np.ndarray) -> bool:
    """True for x,y,t,p events (a 2-D sensor), False for t,x,p (a cochlea)."""
    return events.dtype.names is not None and "y" in events.dtype.names


def duration_us(events: np.ndarray) -> int:
    """Time from the first to the last event, in microseconds (0 for fewer than 2 events)."""
    if len(events) < 2:
        return 0
    return int(events["t"].max() - events["t"].min())


def camera_events(x, y, t, p) -> np.ndarray:
    """A camera event array (``CAMERA_DTYPE``) from equal-length field arrays."""
    return _make(CAMERA_DTYPE, x=x, y=y, t=t, p=p)


def cochlea_events(t, x, p=1) -> np.ndarray:
    """A cochlea event array (``COCHLEA_DTYPE``); ``p`` defaults to 1 (tonic's convention)."""
    return _make(COCHLEA_DTYPE, t=t, x=x, p=p)


def as_events(events: np.ndarray) -> np.ndarray:
    """The same events in neurohw's dtype (int64 fields, tonic's field order).

    Accepts any structured array with the fields x, y, t, p (camera) or t, x, p (cochlea), e.g.
    tonic's DVSGesture dtype (int16 x/y, bool p).
    """
    names = events.dtype.names or ()
    dtype = CAMERA_DTYPE if "y" in names else COCHLEA_DTYPE
    missing = set(dtype.names) - set(names)
    if missing:
        raise ValueError(f"events lack the fields {sorted(missing)} (have {names})")
    if events.dtype == dtype:
        return events
    out = np.empty(len(events), dtype=dtype)
    for name in dtype.names:
        out[name] = events[name]
    return out


def _make(dtype: np.dtype, **fields) -> np.ndarray:
    n = max((np.size(v) for v in fields.values()), default=0)
    out = np.empty(n, dtype=dtype)
    for name, value in fields.items():
        out[name] = value
    return out
