#!/usr/bin/env bash
# Create .venv and install medssl-lab with everything the notebooks and tests need (every extra but none of
# their choices: the core package alone is `pip install .`, see README.md's Install table).
# torch is installed first, pinned, so that nothing pulls a different (multi-GB) build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${MEDSSL_TORCH_SPEC:-torch==2.13.0}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check "$TORCH_SPEC"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,course,docs,export]"
.venv/bin/python -c "import torch, monai, pydicom, medssl_lab; print(f'medssl-lab {medssl_lab.__version__}: torch {torch.__version__}, monai {monai.__version__}, pydicom {pydicom.__version__}')"
