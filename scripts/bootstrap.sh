#!/usr/bin/env bash
# Creates (or refreshes) the local virtual environment .venv for vila_nav on a fresh machine.
# Sourced by scripts/demo and scripts/test; safe to run again: it returns in about a second when
# nothing changed (a stamp holds the hash of the packaging files).
#   1. system libraries for headless OpenGL (MiniWorld renders through EGL/Mesa on the CPU)
#   2. torch==2.13.0 FIRST (anything else first would pull the multi-GB CUDA build)
#   3. the package, editable, with the ros, sim, train, quant and dev extras
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VILA_NAV_VENV:-$ROOT/.venv}"
TORCH_SPEC="torch==2.13.0"
EXTRAS="ros,sim,train,quant,dev"
APT_PACKAGES="libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libglu1-mesa libosmesa6"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# --- 1. system packages -------------------------------------------------------------------
missing_system_libs() {
    local lib missing=0 cache
    cache="$(ldconfig -p 2>/dev/null || true)"
    for lib in libEGL.so.1 libGL.so.1 libGLU.so.1 libOSMesa.so; do
        [[ "$cache" == *"$lib"* ]] || missing=1
    done
    # the Mesa EGL vendor library is what makes EGL work without a display
    ls /usr/share/glvnd/egl_vendor.d/*mesa* >/dev/null 2>&1 || missing=1
    return $((1 - missing))
}
if missing_system_libs; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        log "installing system packages: $APT_PACKAGES"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PACKAGES >/dev/null
    else
        log "missing system libraries for headless rendering; run:"
        log "  sudo apt-get update && sudo apt-get install -y $APT_PACKAGES"
        exit 1
    fi
fi

# --- 2./3. the virtual environment --------------------------------------------------------
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || {
    log "vila_nav needs Python >= 3.10 (found $("$PY" --version 2>&1))"; exit 1; }

STAMP_SRC="$(cat "$ROOT/setup.py" "$ROOT/setup.cfg" "$ROOT/scripts/bootstrap.sh" | sha256sum | cut -d' ' -f1)"
STAMP="$VENV/.vila_nav_stamp"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_SRC" ] \
        && "$VENV/bin/python" -c 'import vila_nav' 2>/dev/null; then
    return 0 2>/dev/null || exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
log "installing $TORCH_SPEC"
"${PIP[@]}" install "$TORCH_SPEC"
log "installing vila_nav[$EXTRAS] (editable)"
"${PIP[@]}" install -e "$ROOT[$EXTRAS]" "$TORCH_SPEC"
echo "$STAMP_SRC" > "$STAMP"
log "ready: $VENV"
