# Sourced by scripts/serve and scripts/test: make sure .venv exists and holds exactly the locked versions.
# Usage: ensure_venv [extra]   (extra = "test" installs the test dependencies too, "bench" the benchmark's)
# Installs with pip from constraints.txt (every package pinned); re-installs only when pyproject.toml or
# constraints.txt changed since the last install.
ensure_venv() {
    local extra="${1:-}"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "voidllm needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
        return 1
    fi
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    local spec="."
    [ -n "$extra" ] && spec=".[$extra]"
    local stamp=".venv/.voidllm-installed-${extra:-base}"
    local digest
    digest=$(cat pyproject.toml constraints.txt | "$python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        local quiet="--quiet"
        if [ ! -f "$stamp" ]; then
            # the first install takes a minute or two: show each package as pip fetches it
            echo "voidllm: installing ${spec} into .venv (pinned by constraints.txt)..." >&2
            quiet="--progress-bar=on"
        fi
        .venv/bin/python -m pip install $quiet --disable-pip-version-check -c constraints.txt -e "$spec" >&2
        echo "$digest" > "$stamp"
        echo "voidllm: .venv is ready" >&2
    fi
}
