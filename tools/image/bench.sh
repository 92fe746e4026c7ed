#!/usr/bin/env bash
# Measure the image: cold build, no-change re-build, code-change re-build, API start-to-healthy,
# and `docker stop` of an API and of a worker. Prints figures; asserts nothing.
#
#   tools/image/bench.sh [--tag NAME:TAG] [--skip-cold]
#
# --skip-cold keeps the build cache (a cold build prunes it: every package is downloaded again).
# Timings: hyperfine (Debian's package; installed when missing and running as root).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

tag=boards-backend:bench
cold=1
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --skip-cold) cold=0; shift ;;
    *) echo "bench.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

if ! command -v hyperfine >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "bench.sh: hyperfine is missing (apt-get install hyperfine)" >&2; exit 2; }
  apt-get install -y -qq hyperfine >/dev/null
fi

work=$(mktemp -d)
names=(bench-api bench-worker bench-redis)
cleanup() {
  docker rm -f "${names[@]}" >/dev/null 2>&1 || true
  docker volume rm bench-data >/dev/null 2>&1 || true
  docker network rm bench-net >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
build=(tools/image/build.sh --tag "$tag")  # build.sh options first, then docker build's
hf=(hyperfine --shell bash --style basic)

echo "== builds ($tag)"
if [ "$cold" = 1 ]; then
  "${hf[@]}" --runs 1 --prepare 'docker builder prune --all --force >/dev/null' \
    --command-name "cold build (build cache and uv cache pruned)" "${build[*]} --quiet"
fi
"${build[@]}" --quiet >/dev/null
"${hf[@]}" --runs 3 --command-name "re-build, no change" "${build[*]} --quiet"

# A copy of the workspace whose application code changes before each run.
tools/image/copy-workspace.sh "$work"
touch_code="echo \"# bench \$(date +%s%N)\" >> $work/packages/backend/src/boards/__init__.py"
"${hf[@]}" --runs 3 --prepare "$touch_code" --command-name "re-build, application code changed" \
  "${build[*]} --context $work --quiet"

echo "== run"
redis_image=$(tools/standins/resolve.sh redis)
docker network create bench-net >/dev/null
docker volume create bench-data >/dev/null  # SQLite shared by the API and the worker
docker run -d --name bench-redis --network bench-net "$redis_image" >/dev/null
healthy() { # wait for Docker's health status (the image's HEALTHCHECK) to say healthy
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$1")" = healthy ]; do sleep 0.1; done
}
stop_cleanly() { # docker stop, and fail unless the container exited 0
  docker stop "$1" >/dev/null && test "$(docker inspect -f '{{.State.ExitCode}}' "$1")" = 0
}
job_running() { # submit a 20 s job and wait until the worker has picked it up
  local id
  id=$(curl -sf -H 'content-type: application/json' -d '{"payload":"bench","delay_seconds":20}' \
    http://127.0.0.1:18800/api/v1/jobs | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  until curl -sf "http://127.0.0.1:18800/api/v1/jobs/$id" | grep -q '"status":"running"'; do sleep 0.1; done
}
export -f healthy stop_cleanly job_running
common="--network bench-net -v bench-data:/app/data -e BOARDS_REDIS_URL=redis://bench-redis:6379/0"
api_run="docker run -d --name bench-api -p 127.0.0.1:18800:8800 $common $tag >/dev/null"
worker_run="docker run -d --name bench-worker $common $tag worker >/dev/null"
# hyperfine's --prepare runs before every timed run (its --cleanup only after the last one).
fresh() { echo "docker rm -f $1 >/dev/null 2>&1 || true"; }
"${hf[@]}" --runs 3 --prepare "$(fresh bench-api)" \
  --command-name "API start to first /health 200" \
  "$api_run && until curl -sf http://127.0.0.1:18800/health >/dev/null; do sleep 0.05; done" \
  --command-name "API start to Docker 'healthy' (HEALTHCHECK every 5 s)" \
  "$api_run && healthy bench-api"
"${hf[@]}" --runs 3 --prepare "$(fresh bench-api); $api_run && healthy bench-api" \
  --command-name "docker stop, idle API" "stop_cleanly bench-api"
"${hf[@]}" --runs 3 --prepare "$(fresh bench-worker); $worker_run && healthy bench-worker" \
  --command-name "docker stop, idle worker" "stop_cleanly bench-worker"
# A 20 s job in flight: the worker hands it back to the queue within its shutdown timeout.
"${hf[@]}" --runs 3 --prepare "$(fresh bench-worker); $(fresh bench-api); $api_run && $worker_run && healthy bench-api && healthy bench-worker && job_running" \
  --command-name "docker stop, worker with a job in flight" "stop_cleanly bench-worker"

echo "== size"
uv run --frozen poe image-inspect --tag "$tag"
