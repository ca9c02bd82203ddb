#!/usr/bin/env bash
# One command for a fresh machine: install, then run the main job on the default data.
# Data comes from $MEDSSL_DATA_DIR if set, else is downloaded, else synthetic phantoms stand in.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/medssl-lab "$@"
