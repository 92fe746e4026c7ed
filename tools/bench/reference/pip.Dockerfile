# Reference image for `just image-compare` (tools/bench/image_compare.py), never shipped: the
# naive way, one stage, `pip install` of the backend on the base image, run as root.
# The same base and the same versions as the project's image: PYTHON_IMAGE is the resolved base,
# and pip-constraints.txt is uv.lock exported (`uv export --frozen --no-dev`), written by the
# benchmark before each build.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm
FROM ${PYTHON_IMAGE}

# libpq5: psycopg's client library, as in the project's image (same code, same needs).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY .cache/bench/pip-constraints.txt /tmp/constraints.txt
COPY packages/backend /app/packages/backend
# The `ssl_ca` secret: the CA bundle of a TLS-intercepting proxy, as for the project's build.
RUN --mount=type=secret,id=ssl_ca \
    if [ -f /run/secrets/ssl_ca ]; then export PIP_CERT=/run/secrets/ssl_ca; fi \
 && pip install --no-cache-dir --root-user-action=ignore -c /tmp/constraints.txt ./packages/backend

ENV BOARDS_ALEMBIC_INI=/app/packages/backend/alembic.ini
EXPOSE 8800
# The project's health check, so that "to healthy" compares like with like.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["boards", "healthcheck"]
ENTRYPOINT ["boards"]
CMD ["api"]
