# Reference image for `just image-compare` (tools/bench/image_compare.py), never shipped:
# astral-sh/uv-docker-example's multistage.Dockerfile (commit 00701a3), adapted to this workspace.
# Every change from the example is marked "Adapted:". The context is the project's own scoped
# context: uv-example.Dockerfile.dockerignore has packages/backend/.dockerignore's rules.

# Adapted: base and uv as build args. The example builds on ghcr.io/astral-sh/uv:python3.12-
# bookworm-slim and runs on python:3.12-slim-bookworm; here both stages use the project's resolved
# base and uv is copied in from the project's uv image, so the three images share base and uv.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
FROM ${UV_IMAGE} AS uv

# First, build the application in the `/app` directory.
FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy

# Omit development dependencies
ENV UV_NO_DEV=1

# Disable Python downloads, because we want to use the system interpreter
# across both images.
ENV UV_PYTHON_DOWNLOADS=0

# Adapted: the `ssl_ca` secret (a TLS-intercepting proxy's CA bundle), as for the project's build.
ENV SSL_CERT_FILE=/run/secrets/ssl_ca

WORKDIR /app
# Adapted: a workspace, not a single project. `--package boards-backend` installs the backend's
# dependencies only, and `--locked` needs every member's pyproject.toml to check uv.lock (a new
# member needs a bind line here).
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ssl_ca \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=packages/backend/pyproject.toml,target=packages/backend/pyproject.toml \
    --mount=type=bind,source=packages/client/pyproject.toml,target=packages/client/pyproject.toml \
    --mount=type=bind,source=packages/testing/pyproject.toml,target=packages/testing/pyproject.toml \
    uv sync --locked --no-install-project --package boards-backend
COPY . /app
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ssl_ca \
    uv sync --locked --package boards-backend


# Then, use a final image without uv
FROM ${PYTHON_IMAGE}

# Adapted: libpq5, psycopg's client library, as in the project's image (same code, same needs).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 \
 && rm -rf /var/lib/apt/lists/*

# Setup a non-root user
RUN groupadd --system --gid 999 nonroot \
 && useradd --system --gid 999 --uid 999 --create-home nonroot

# Copy the application from the builder
COPY --from=builder --chown=nonroot:nonroot /app /app

# Place executables in the environment at the front of the path
ENV PATH="/app/.venv/bin:$PATH"

# Adapted: where the backend finds its migrations (the example app has none).
ENV BOARDS_ALEMBIC_INI=/app/packages/backend/alembic.ini

# Use the non-root user to run our application
# (hadolint: the example's own named user, kept)
# hadolint ignore=DL3066
USER nonroot

# Use `/app` as the working directory
WORKDIR /app

# Adapted: the project's health check, so that "to healthy" compares like with like.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["boards", "healthcheck"]

# Adapted: the backend's entry point instead of `fastapi run src/uv_docker_example`.
EXPOSE 8800
CMD ["boards", "api"]
