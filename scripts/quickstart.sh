#!/usr/bin/env bash
# One command for a fresh machine: install, then run the main job on the default data.
# Data comes from --data-dir or $MEDSSL_DATA_DIR if set, else is downloaded; offline without it, pass --synthetic.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/medssl-lab "$@"
