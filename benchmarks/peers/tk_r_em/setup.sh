#!/usr/bin/env bash
# Create the benchmark-only virtual environment for the tk_r_em peer (Lobato et al., GPL-3, TensorFlow).
#
# The environment lives OUTSIDE the repository, at ${TK_R_EM_VENV:-$HOME/.cache/atomlens-peers/tk_r_em}.
# atomlens never imports tk_r_em or TensorFlow; benchmarks/peers/tk_r_em_peer.py calls
# run_tk_r_em.py with this environment's python in a subprocess.
#
# Pins: tk-r-em 1.0.4 (latest on PyPI; its sdist ships the six trained SavedModels, so nothing is
# downloaded at run time) and tensorflow-cpu 2.12.1 (the version tk_r_em's README recommends on Linux;
# the SavedModels are Keras-2 models, which TensorFlow >= 2.16 / Keras 3 cannot load with
# tf.keras.models.load_model). tensorflow-cpu pulls no CUDA packages.
#
# Usage: bash benchmarks/peers/tk_r_em/setup.sh   (idempotent: does nothing when already set up)
set -euo pipefail

VENV="${TK_R_EM_VENV:-$HOME/.cache/atomlens-peers/tk_r_em}"
PYTHON="${PYTHON:-python3}"
PINS=(
    "tensorflow-cpu==2.12.1"
    "tk-r-em==1.0.4"
    "numpy==1.23.5"
    "h5py==3.15.1"
    "matplotlib==3.9.4"
)

check() {
    "$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import sys

want = {"tensorflow-cpu": "2.12.1", "tk-r-em": "1.0.4", "numpy": "1.23.5"}
for name, version in want.items():
    if md.version(name) != version:
        sys.exit(f"{name} {md.version(name)} != {version}")
import tk_r_em  # noqa: F401  (imports tensorflow too)
PY
}

if [[ -x "$VENV/bin/python" ]] && check >/dev/null 2>&1; then
    echo "tk_r_em environment already set up at $VENV"
    exit 0
fi

echo "creating tk_r_em environment at $VENV"
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade --quiet pip
"$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
check
if "$VENV/bin/python" -m pip list 2>/dev/null | grep -i -q '^nvidia-'; then
    echo "error: CUDA packages were installed into $VENV" >&2
    exit 1
fi
echo "tk_r_em environment ready: $("$VENV/bin/python" --version), $VENV"
