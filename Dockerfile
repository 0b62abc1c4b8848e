# syntax=docker/dockerfile:1
# VoidLLM's container image: docker build -t voidllm . (see the README's "Deployment" section).
# Stage 1 builds the web UI with Node, stage 2 the wheel (once), stage 3 is the slim runtime that installs
# it. Stages 2 and 3 run deploy/docker/install.sh, which the test suite also runs in a fresh venv
# (tests/test_container_image.py), and tests/test_container_image.py lints this file with hadolint.

# -- 1: the web UI (npm ci && npm run build in ui/) ----------------------------------------------------
FROM node:20-bookworm-slim AS ui
WORKDIR /src/ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui/ ./
RUN npm run build

# -- 2: the wheel, built once, with the UI as package data ---------------------------------------------
FROM python:3.11-slim-bookworm AS wheel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY voidllm/ voidllm/
COPY --from=ui /src/ui/dist/ ui/dist/
COPY deploy/docker/install.sh /usr/local/bin/voidllm-install
RUN VOIDLLM_REQUIRE_UI=1 voidllm-install wheel /src /wheels

# -- 3: the runtime ---------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="VoidLLM" \
      org.opencontainers.image.description="Privacy-first LLM gateway and MCP gateway on trio" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"

ENV PATH=/opt/voidllm/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

COPY deploy/docker/install.sh /usr/local/bin/voidllm-install
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    voidllm-install runtime /wheels /opt/voidllm \
    && groupadd --system --gid 10001 voidllm \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin voidllm \
    && mkdir -p /data \
    && chown voidllm:voidllm /data

# Everything the gateway writes lives under /data (the SQLite file, the usage spill); the root filesystem
# may be read-only (docker run --read-only, readOnlyRootFilesystem). The configuration reads the
# environment: see deploy/docker/voidllm.yaml.
COPY deploy/docker/voidllm.yaml /etc/voidllm/voidllm.yaml
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8080

# Python's standard library asks /healthz: the slim image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VOIDLLM_PORT', '8080'), timeout=4)"]

# Exec form: voidllm is PID 1 and gets SIGTERM itself (it drains in-flight requests, then exits 0).
ENTRYPOINT ["voidllm"]
CMD ["serve"]
