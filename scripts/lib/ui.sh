# Sourced by scripts/serve: build the web UI (ui/ -> ui/dist) when it is missing or older than its sources.
#
# ensure_ui_build: only when ui/package.json exists. Runs `npm ci` when ui/node_modules is missing or older
#   than ui/package-lock.json, then `npm run build`, when ui/dist/index.html is missing or any source
#   (ui/src, ui/public, ui/index.html, the package and config files) is newer than it. Without npm, or when
#   the build fails, it says so on stderr and returns 0: the gateway then serves the APIs, and / says that
#   the UI is not built. VOIDLLM_SKIP_UI_BUILD=1 skips it (a build made elsewhere, or none wanted).
ui_sources_changed() {
    local stamp=ui/dist/index.html
    [ -f "$stamp" ] || return 0
    local newer
    newer=$(find ui/src ui/public ui/index.html ui/package.json ui/package-lock.json ui/vite.config.* \
        ui/tsconfig*.json ui/tailwind.config.* ui/postcss.config.* -newer "$stamp" -print -quit 2>/dev/null)
    [ -n "$newer" ]
}

ensure_ui_build() {
    [ -f ui/package.json ] || return 0
    if [ "${VOIDLLM_SKIP_UI_BUILD:-}" = 1 ]; then
        return 0
    fi
    ui_sources_changed || return 0
    if ! command -v npm >/dev/null 2>&1; then
        echo "voidllm: npm was not found, so the web UI (ui/) cannot be built; serving the APIs only." >&2
        echo "voidllm: install Node.js 20+ with npm and run scripts/serve again to get the UI at /." >&2
        return 0
    fi
    echo "voidllm: building the web UI (ui/dist)..." >&2
    if ! (
        cd ui
        local installed=node_modules/.package-lock.json
        if [ ! -f "$installed" ] || [ package-lock.json -nt "$installed" ]; then
            npm ci --no-audit --no-fund >&2
        fi
        npm run build >&2
    ); then
        echo "voidllm: the web UI build failed (see above); serving the APIs, / says the UI is not built." >&2
        return 0
    fi
    echo "voidllm: the web UI is built" >&2
}
