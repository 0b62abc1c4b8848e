# Sourced by scripts/serve and scripts/voidllm, from the repository's root: the configuration and secrets
# that every entry point of a checkout shares.
#
# use_local_config: exports VOIDLLM_CONFIG unless it is set or --config is among the arguments: the
#   documented search order (./voidllm.yaml; /etc/voidllm/voidllm.yaml), then the checkout's
#   config.example.yaml.
# load_secrets [create]: exports the variables of data/secrets.env that are not set already; with
#   "create", first generates the file (an encryption key and a bootstrap admin key, mode 600) when missing.
use_local_config() {
    local arg
    for arg in "$@"; do
        case "$arg" in --config|--config=*) return 0 ;; esac
    done
    [ -n "${VOIDLLM_CONFIG:-}" ] && return 0
    if [ -f voidllm.yaml ]; then
        export VOIDLLM_CONFIG=voidllm.yaml
    elif [ -f /etc/voidllm/voidllm.yaml ]; then
        export VOIDLLM_CONFIG=/etc/voidllm/voidllm.yaml
    else
        export VOIDLLM_CONFIG=config.example.yaml
    fi
}

load_secrets() {
    if [ "${1:-}" = create ] && [ ! -f data/secrets.env ]; then
        mkdir -p data
        (
            umask 077
            .venv/bin/python - > data/secrets.env <<'PY'
import secrets, base64
print("VOIDLLM_ENCRYPTION_KEY=" + base64.b64encode(secrets.token_bytes(32)).decode())
print("VOIDLLM_ADMIN_KEY=" + secrets.token_hex(32))
PY
        )
    fi
    [ -f data/secrets.env ] || return 0
    local name value
    while IFS='=' read -r name value; do
        if [ -n "$name" ] && [ -z "${!name:-}" ]; then
            export "$name=$value"
        fi
    done < data/secrets.env
    return 0
}
