#!/bin/sh
# The container image's install steps, in one script that the Dockerfile runs and that the test suite runs
# too (tests/test_container_image.py, in a fresh venv), so a step that breaks fails CI, not a release.
#
#   install.sh wheel SOURCE WHEELS    build the voidllm wheel from the checkout SOURCE into the directory
#                                     WHEELS (the build runs on a scratch copy: SOURCE is never written)
#   install.sh runtime WHEELS VENV    create the virtual environment VENV and install the wheel from WHEELS
#                                     into it, every dependency pinned by WHEELS/constraints.txt, then run
#                                     `voidllm version` from it
#
# The wheel carries the web UI when SOURCE/ui/dist holds a build (`npm ci && npm run build` in ui/);
# VOIDLLM_REQUIRE_UI=1 (as in the Dockerfile) makes a missing build an error instead of an image without
# the UI. PYTHON names the interpreter (default python3). pip's own settings (index, find-links, cache)
# apply as usual. POSIX sh: the image's build and runtime stages have no bash requirement.
set -eu

PYTHON=${PYTHON:-python3}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

build_wheel() {
    source=$1
    wheels=$2
    [ -f "$source/pyproject.toml" ] || die "$source is not a voidllm checkout (no pyproject.toml)"
    if [ ! -f "$source/ui/dist/index.html" ]; then
        [ "${VOIDLLM_REQUIRE_UI:-}" = 1 ] && die "no UI build in $source/ui/dist (run npm ci && npm run build in ui/)"
        echo "install.sh: no UI build in $source/ui/dist: the wheel serves the APIs only" >&2
    fi
    # What the wheel is built from: setuptools writes build/ and *.egg-info next to pyproject.toml, so the
    # build runs on a copy of exactly these paths (voidllm/web/ui is a link to ../../ui/dist).
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    cp -R "$source/pyproject.toml" "$source/README.md" "$source/constraints.txt" "$source/voidllm" "$scratch/"
    mkdir -p "$scratch/ui"
    if [ -d "$source/ui/dist" ]; then
        cp -R "$source/ui/dist" "$scratch/ui/dist"
    fi
    find "$scratch/voidllm" -name __pycache__ -type d -prune -exec rm -rf {} +
    mkdir -p "$wheels"
    # PIP_CONSTRAINT (unlike -c) also pins what pip installs into the isolated build environment.
    PIP_CONSTRAINT="$scratch/constraints.txt" "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$scratch"
    cp "$scratch/constraints.txt" "$wheels/constraints.txt"
    if [ "${VOIDLLM_REQUIRE_UI:-}" = 1 ]; then
        "$PYTHON" - "$wheels" <<'PY' || die "the wheel holds no web UI (voidllm/web/ui/index.html)"
import pathlib, sys, zipfile
wheel, = pathlib.Path(sys.argv[1]).glob("voidllm-*.whl")
sys.exit("voidllm/web/ui/index.html" not in zipfile.ZipFile(wheel).namelist())
PY
    fi
    echo "install.sh: built $(cd "$wheels" && ls voidllm-*.whl)" >&2
}

install_runtime() {
    wheels=$1
    venv=$2
    set -- "$wheels"/voidllm-*.whl
    [ "$#" = 1 ] && [ -f "$1" ] || die "expected exactly one voidllm wheel in $wheels"
    [ -f "$wheels/constraints.txt" ] || die "no constraints.txt in $wheels (made by: install.sh wheel)"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "$wheels/constraints.txt" "$1"
    "$venv/bin/voidllm" version
}

case "${1:-}" in
    wheel)
        [ "$#" = 3 ] || die "usage: install.sh wheel SOURCE WHEELS"
        build_wheel "$2" "$3"
        ;;
    runtime)
        [ "$#" = 3 ] || die "usage: install.sh runtime WHEELS VENV"
        install_runtime "$2" "$3"
        ;;
    *)
        die "usage: install.sh wheel SOURCE WHEELS | install.sh runtime WHEELS VENV"
        ;;
esac
