# Sourced by scripts/test (and scripts/serve), from the repository's root: the web UI's npm packages and build.
#
# ensure_ui_packages: `npm ci` in ui/ when ui/node_modules is missing or older than ui/package-lock.json
#   (npm writes ui/node_modules/.package-lock.json on every install: that is the stamp).
# ensure_ui_build: ensure_ui_packages, then `npm run build` when ui/dist/index.html is missing or older than
#   any of the UI's sources (ui/src, ui/public, ui/index.html, the package and TypeScript/Vite configs).
# Both print what they do on stderr and fail with a clear message when npm is missing.
ui_need_npm() {
    command -v npm >/dev/null && return 0
    echo "voidllm: the web UI needs Node.js 20.19+ with npm (https://nodejs.org, or your distribution's" \
        "nodejs and npm packages); ui/ cannot be installed or built without it" >&2
    return 1
}

ensure_ui_packages() {
    local stamp=ui/node_modules/.package-lock.json
    if [ -f "$stamp" ] && [ ! ui/package-lock.json -nt "$stamp" ]; then
        return 0
    fi
    ui_need_npm || return 1
    echo "voidllm: installing the UI's npm packages (npm ci in ui/)..." >&2
    (cd ui && npm ci --no-audit --no-fund) >&2
}

ui_sources_newer_than() {
    local sources=(ui/src ui/index.html ui/package.json ui/package-lock.json)
    local path
    for path in ui/public ui/vite.config.ts ui/tsconfig*.json; do
        [ -e "$path" ] && sources+=("$path")
    done
    [ -n "$(find "${sources[@]}" -newer "$1" -print -quit)" ]
}

ensure_ui_build() {
    ensure_ui_packages || return 1
    if [ -f ui/dist/index.html ] && ! ui_sources_newer_than ui/dist/index.html; then
        return 0
    fi
    echo "voidllm: building the web UI (npm run build in ui/)..." >&2
    (cd ui && npm run build) >&2 || return 1  # explicit: also when called where errexit does not apply
    # index.html is the build's stamp: date it now, whatever the build rewrote
    touch ui/dist/index.html
}

# serve_ui_build: what scripts/serve runs. ensure_ui_build when ui/package.json exists, but the gateway is
#   served whatever happens: without npm, or when the build fails, it says so on stderr (the APIs are served
#   and / says that the UI is not built) and returns 0. VOIDLLM_SKIP_UI_BUILD=1 skips it (a build made
#   elsewhere, or none wanted).
serve_ui_build() {
    [ -f ui/package.json ] || return 0
    [ "${VOIDLLM_SKIP_UI_BUILD:-}" = 1 ] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        if [ ! -f ui/dist/index.html ]; then
            echo "voidllm: npm was not found, so the web UI (ui/) cannot be built; serving the APIs only." >&2
            echo "voidllm: install Node.js 20.19+ with npm, then run scripts/serve again for the UI." >&2
        elif ui_sources_newer_than ui/dist/index.html; then
            echo "voidllm: npm was not found: serving the web UI as last built, older than ui/'s sources." >&2
        fi
        return 0
    fi
    if ! ensure_ui_build; then
        echo "voidllm: the web UI build failed (see above); serving the APIs, and the last build if any." >&2
    fi
    return 0
}
