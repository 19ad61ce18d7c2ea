#!/usr/bin/env bash
# Creates .venv and installs neurohw with its test tools. Safe to run again.
# torch is installed first and pinned to the CPU build so that pip does not pull a CUDA build.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test]"
# The CPU backend's numba kernel, compiled once per machine into numba's cache for the weight
# kinds of the shipped devices (about 2 min on two cores; a second run finds it in the cache):
# no run and no test pays the JIT afterwards.
echo "setup.sh: compiling the CPU backend's kernels (once per machine, ~2 min on two cores)"
.venv/bin/python -c "from neurohw.reservoir.backends.cpu import compile_kernels; compile_kernels()"
