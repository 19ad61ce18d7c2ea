"""Build the CUDA kernels (kernels/*.cu) for the CPU through kernels/host_shim.h, with g++.

This is how GPU code is verified on machines without a GPU: the same source, with blocks and
threads run as sequential loops, driven by the same host code as on the GPU
(:func:`neurohw.reservoir.backends.cupy_backend.run_batch` with ``xp=numpy``). A
:class:`ShimModule` quacks like ``cupy.RawModule``: ``get_function(name)(grid, block, args)``.

Compiled with ``-ffp-contract=off`` (the GPU side uses ``--fmad=false``) so that no
multiply-add is fused and float results equal numpy's operation by operation.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from neurohw.paths import atomic_path, cache_dir
from neurohw.resources import kernels_dir

KERNELS_DIR = kernels_dir()
GXX_FLAGS = ("-O2", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared")
_KERNEL_RE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', re.S)
_SCALARS = {
    "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint,
    "unsigned": ctypes.c_uint,
    "long long": ctypes.c_longlong,
    "unsigned long long": ctypes.c_ulonglong,
    "double": ctypes.c_double,
    "float": ctypes.c_float,
}


def kernel_signatures(source: str) -> dict[str, list[tuple[str, str]]]:
    """``{kernel: [(type, name), ...]}`` of every ``extern "C" __global__`` function."""
    out = {}
    for name, params in _KERNEL_RE.findall(source):
        plist = []
        for p in params.split(","):
            p = " ".join(p.split())
            m = re.match(r"(.*?)([A-Za-z_]\w*)$", p)
            if not m:
                raise ValueError(f"cannot parse kernel parameter {p!r} of {name}")
            plist.append((m.group(1).strip(), m.group(2)))
        out[name] = plist
    return out


def gxx_available() -> bool:
    return shutil.which("g++") is not None


class ShimKernel:
    """One kernel of a :class:`ShimModule`: ``kernel(grid, block, args)`` like cupy."""

    def __init__(self, lib, name: str, params: list[tuple[str, str]]):
        self.name = name
        self.params = params
        self._fn = getattr(lib, f"shim_{name}")
        argtypes = [ctypes.c_uint] * 6
        for ctype, _ in params:
            if "*" in ctype:
                argtypes.append(ctypes.c_void_p)
            else:
                base = " ".join(w for w in ctype.split() if w not in ("const", "__restrict__"))
                argtypes.append(_SCALARS[base])
        self._fn.argtypes = argtypes
        self._fn.restype = None

    def __call__(self, grid, block, args):
        if len(args) != len(self.params):
            raise TypeError(f"{self.name} takes {len(self.params)} arguments, got {len(args)}")
        grid = tuple(grid) + (1,) * (3 - len(grid))
        block = tuple(block) + (1,) * (3 - len(block))
        conv = []
        for (ctype, pname), a in zip(self.params, args):
            if "*" in ctype:
                if not isinstance(a, np.ndarray) or not a.flags.c_contiguous:
                    raise TypeError(f"{self.name}: argument {pname} must be a C-contiguous numpy array")
                conv.append(ctypes.c_void_p(a.ctypes.data))
            else:
                conv.append(a.item() if isinstance(a, np.generic) else a)
        self._fn(*grid, *block, *conv)


class ShimModule:
    """A kernels/*.cu file built for the CPU; ``get_function(name)`` like ``cupy.RawModule``."""

    def __init__(self, library: Path, signatures: dict):
        self._lib = ctypes.CDLL(str(library))
        self._sigs = signatures
        self.library = library

    def get_function(self, name: str) -> ShimKernel:
        return ShimKernel(self._lib, name, self._sigs[name])


def build(cu_file: str | Path, defines: dict[str, str] | None = None, out_dir: Path | None = None) -> ShimModule:
    """Compile ``cu_file`` with g++ through host_shim.h (cached by content) and load it."""
    cu_file = Path(cu_file).resolve()
    source = cu_file.read_text()
    sigs = kernel_signatures(source)
    defines = dict(defines or {})
    wrappers = []
    for name, params in sigs.items():
        decl = ", ".join(f"{t} {n}" for t, n in params)
        names = ", ".join(n for _, n in params)
        wrappers.append(
            f'extern "C" void shim_{name}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, {decl}) {{\n'
            f"    shim_launch(dim3(gx, gy, gz), dim3(bx, by, bz), [&]() {{ {name}({names}); }});\n}}\n"
        )
    unit = f'#include "{KERNELS_DIR / "host_shim.h"}"\n#include "{cu_file}"\n\n' + "\n".join(wrappers)
    flags = list(GXX_FLAGS) + [f"-D{k}={v}" for k, v in sorted(defines.items())]
    shim_header = (KERNELS_DIR / "host_shim.h").read_text()
    key = hashlib.sha256("\0".join([unit, source, shim_header, *flags]).encode()).hexdigest()[:16]
    out_dir = Path(out_dir) if out_dir else cache_dir() / "host_shim"
    library = out_dir / f"{cu_file.stem}-{key}.so"
    if not library.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        src = out_dir / f"{cu_file.stem}-{key}.cpp"
        src.write_text(unit)
        with atomic_path(library, suffix=".so") as tmp:
            proc = subprocess.run(["g++", *flags, str(src), "-o", str(tmp)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"g++ failed on {cu_file.name} through host_shim.h:\n{proc.stderr[-4000:]}")
    return ShimModule(library, sigs)
