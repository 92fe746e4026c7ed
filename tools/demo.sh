#!/usr/bin/env bash
# The main job, end to end: build the image, start API + worker + PostgreSQL + Redis
# (compose.yaml), wait until every service is healthy, push one job through the HTTP API with
# the typed client, and print it. The stack keeps running; `just down` stops it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# Image names come from the environment (BOARDS_PYTHON_IMAGE, BOARDS_UV_IMAGE for the build,
# BOARDS_POSTGRES_IMAGE, BOARDS_REDIS_IMAGE for compose.yaml); unset, the official ones.
tools/image/build.sh --tag boards-backend:local
export BOARDS_IMAGE=boards-backend:local

docker compose up --detach --no-build --wait --wait-timeout 120
port=${BOARDS_API_PORT:-8800}
echo "demo: API at http://127.0.0.1:$port  (docs: http://127.0.0.1:$port/docs)" >&2
uv run --frozen boards-client submit "hello from the boards demo" --url "http://127.0.0.1:$port" --wait
# The full path: it works from any new shell, whether or not ~/.local/bin is on its PATH.
echo "demo: the stack is still running; stop it with: $(command -v uv) run just down" >&2
