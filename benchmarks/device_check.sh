#!/usr/bin/env bash
# The GPU check of issue 16, as one short prepared script (run from the repository root on
# a machine with a CUDA device and PyTorch installed):
#   1. the back-end tests on the GPU (the same answers as NumPy, float64, to 1e-8);
#   2. the device benchmark at n = 1e5 and 1e6 (d = 50, 784), 60 s budgets, the NumPy
#      baseline on 2 CPU threads for 30 s. The full protocol (budgets 60 and 300) is
#      `convexrelu bench --device cuda` with its defaults.
# Output: $OUT (or ./device_check_out): pytest log, device.json, device.md.
set -euo pipefail
OUT=${OUT:-device_check_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name(0))"
CONVEXRELU_TEST_DEVICE=cuda python -m pytest -q -p no:cacheprovider tests/test_device.py 2>&1 | tail -5 | tee "$OUT/pytest.log"
python -c "import sys; from convexrelu.cli import main; sys.exit(main(sys.argv[1:]))" \
    bench --device cuda --out "$OUT" -- --sizes "${SIZES:-100000,1000000}" --dims "${DIMS:-50,784}" \
    --budgets "${BUDGETS:-60}" --cpu-budget "${CPU_BUDGET:-30}" 2>&1 | tee "$OUT/bench.log"
