#!/usr/bin/env bash
# The GPU path, run for real: on a machine with an NVIDIA GPU, from a neurohw checkout,
#   benchmarks/gpu_check.sh [OUT_DIR]
# 1. makes the project's .venv if missing (setup.sh) and installs the `gpu` extra into it;
# 2. runs the tests marked `gpu` (the cupy backend against the numpy reference, bit for bit);
# 3. runs `neurohw bench reservoir --json` (every backend, cupy included, against snntorch);
# 4. prints one summary: test result, and samples/s (x snntorch) of cpu and cupy, noise off/on.
# Logs and the benchmark's JSON go to OUT_DIR (default: $TMPDIR/neurohw-gpu-check).
# Exit status: 0 when the gpu tests pass and the cupy rows were measured, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${TMPDIR:-/tmp}/neurohw-gpu-check}
mkdir -p "$OUT"
PY=.venv/bin/python
export NEUROHW_CACHE=${NEUROHW_CACHE:-$OUT/cache}

if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu_check: nvidia-smi not found; run this on a machine with an NVIDIA GPU" >&2
    exit 1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

[ -x "$PY" ] || ./setup.sh > "$OUT/setup.log" 2>&1 || { echo "gpu_check: setup.sh failed (see $OUT/setup.log)" >&2; exit 1; }
"$PY" -m pip install -q -e ".[gpu,test]" > "$OUT/pip.log" 2>&1 || { echo "gpu_check: installing the gpu extra failed (see $OUT/pip.log)" >&2; exit 1; }
"$PY" - <<'EOF' | tee "$OUT/cupy.txt"
from neurohw.reservoir.backends import why_unavailable
import cupy
why = why_unavailable("cupy")
print(f"cupy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}: " + ("backend works" if not why else f"backend cannot run: {why}"))
EOF

"$PY" -m pytest -q -m gpu tests > "$OUT/pytest_gpu.txt" 2>&1
TESTS_RC=$?
"$PY" -m neurohw bench reservoir --json > "$OUT/bench_reservoir.json" 2> "$OUT/bench_reservoir.err"
BENCH_RC=$?

"$PY" - "$OUT" "$TESTS_RC" "$BENCH_RC" <<'EOF'
import json
import sys
from pathlib import Path

out, tests_rc, bench_rc = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
tail = (out / "pytest_gpu.txt").read_text().strip().splitlines()
last = tail[-1] if tail else "no output"
ok = tests_rc == 0 and " passed" in f" {last}"  # all skipped means the GPU did not work
print(f"gpu tests: {'passed' if ok else 'FAILED or skipped'} ({last})")
if bench_rc != 0:
    print(f"bench reservoir: FAILED (see {out / 'bench_reservoir.err'})")
    sys.exit(1)
report = json.loads((out / "bench_reservoir.json").read_text())
rows = {(r["name"], r["noise"]): r for r in report["results"]}
w = report["workload"]
print(f"reservoir ({w['n_inputs']} inputs, {w['n_neurons']} neurons, {w['steps']} steps, batch {w['batch']}, {w['device']}):")
for name in ("snntorch", "neurohw-cpu", "neurohw-cupy"):
    for noise in (False, True):
        r = rows.get((name, noise))
        if r is not None:
            print(f"  {name:<14} noise {'on ' if noise else 'off'} {r['samples_per_s']:>10.1f} samples/s  {r['ratio_to_snntorch']:>7.2f} x snntorch")
for m in report.get("not_measured", []):
    print(f"  {m['name']}: NOT measured ({m['reason']})")
    ok = False
sys.exit(0 if ok else 1)
EOF
