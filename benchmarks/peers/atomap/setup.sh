#!/usr/bin/env bash
# Create the benchmark-only virtual environment for the Atomap peer (Nord et al. 2017, GPL-3).
#
# The environment lives OUTSIDE the repository, at ${ATOMAP_VENV:-$HOME/.cache/atomlens-peers/atomap}.
# atomlens never imports atomap or HyperSpy; benchmarks/peers/atomap_peer.py calls run_atomap.py
# with this environment's python in a subprocess.
#
# Pins: atomap 0.4.2 (latest on PyPI, January 2025; needs hyperspy >= 2) with the versions pip
# resolved for it on Python 3.11.7 and checked with run_atomap.py: hyperspy 2.5.0 (and exspy,
# rosettasciio, which atomap 0.4 imports), numpy 2.4.6, scipy 1.17.1, scikit-image 0.26.0 (its
# peak_local_max finds the initial positions), numba 0.68.1. CPU only: nothing pulls torch or CUDA.
#
# Usage: bash benchmarks/peers/atomap/setup.sh   (idempotent: does nothing when already set up)
set -euo pipefail

VENV="${ATOMAP_VENV:-$HOME/.cache/atomlens-peers/atomap}"
PYTHON="${PYTHON:-python3}"
PINS=(
    "atomap==0.4.2"
    "hyperspy==2.5.0"
    "exspy==0.3.2"
    "rosettasciio==0.15.0"
    "numpy==2.4.6"
    "scipy==1.17.1"
    "scikit-image==0.26.0"
    "scikit-learn==1.9.1"
    "matplotlib==3.11.2"
    "numba==0.68.1"
    "h5py==3.16.0"
    "ase==3.29.0"
    "dask==2026.8.0"
)

check() {
    "$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import sys

want = {
    "atomap": "0.4.2",
    "hyperspy": "2.5.0",
    "numpy": "2.4.6",
    "scipy": "1.17.1",
    "scikit-image": "0.26.0",
}
for name, version in want.items():
    if md.version(name) != version:
        sys.exit(f"{name} {md.version(name)} != {version}")
import warnings

warnings.simplefilter("ignore")  # HyperSpy 2.5 warns about its own deprecated imports
import atomap.api  # noqa: F401, E402  (imports hyperspy too)
PY
}

if [[ -x "$VENV/bin/python" ]] && check >/dev/null 2>&1; then
    echo "atomap environment already set up at $VENV"
    exit 0
fi

echo "creating atomap environment at $VENV"
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade --quiet pip
"$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
check
if "$VENV/bin/python" -m pip list 2>/dev/null | grep -i -q -E '^(nvidia-|torch )'; then
    echo "error: CUDA packages or torch were installed into $VENV" >&2
    exit 1
fi
echo "atomap environment ready: $("$VENV/bin/python" --version), $VENV"
