#!/usr/bin/env bash
# Make the encoder shipped with the package (medssl_lab/weights/encoder_cpu.pt) with the package's own pretrain
# command: the cpu profile on the real pool. Usage: bash scripts/make_shipped_encoder.sh DATA_DIR [RUN_DIR]
# About 11 minutes on 2 free cores. The run folder keeps the full, resumable checkpoint; the shipped file keeps the
# weights, config, data provenance, history and this command.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:?usage: bash scripts/make_shipped_encoder.sh DATA_DIR [RUN_DIR]}"
RUN="${2:-runs/shipped_cpu}"
COMMAND="medssl-lab pretrain --profile cpu --device cpu --seed 0 --out $RUN"
.venv/bin/medssl-lab pretrain --profile cpu --device cpu --seed 0 --data-dir "$DATA" --out "$RUN"
.venv/bin/python - "$RUN" "$COMMAND" <<'PY'
import sys
from medssl_lab.pretrain import export_encoder
from medssl_lab.pretrain.checkpoint import SHIPPED_DIR

SHIPPED_DIR.mkdir(exist_ok=True)
path = export_encoder(sys.argv[1], SHIPPED_DIR / "encoder_cpu.pt", sys.argv[2])
print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
PY
