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
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$work"
touch_code="echo \"# bench \$(date +%s%N)\" >> $work/packages/backend/src/boards/__init__.py"
"${hf[@]}" --runs 3 --prepare "$touch_code" --command-name "re-build, application code changed" \
  "${build[*]} --context $work --quiet"

echo "== run"
redis_image=$(uv run --frozen boards-images resolve redis)
docker network create bench-net >/dev/null
docker run -d --name bench-redis --network bench-net "$redis_image" >/dev/null
healthy() { # wait for Docker's health status (the image's HEALTHCHECK) to say healthy
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$1")" = healthy ]; do sleep 0.1; done
}
export -f healthy
api_run="docker run -d --name bench-api -p 127.0.0.1:18800:8800 $tag >/dev/null"
# hyperfine's --prepare runs before every timed run (its --cleanup only after the last one).
fresh() { echo "docker rm -f $1 >/dev/null 2>&1 || true"; }
"${hf[@]}" --runs 3 --prepare "$(fresh bench-api)" \
  --command-name "API start to first /health 200" \
  "$api_run && until curl -sf http://127.0.0.1:18800/health >/dev/null; do sleep 0.05; done" \
  --command-name "API start to Docker 'healthy' (HEALTHCHECK every 5 s)" \
  "$api_run && healthy bench-api"
"${hf[@]}" --runs 3 --prepare "$(fresh bench-api); $api_run && healthy bench-api" \
  --command-name "docker stop, idle API" \
  "docker stop bench-api >/dev/null && test \$(docker inspect -f '{{.State.ExitCode}}' bench-api) = 0"
worker_run="docker run -d --name bench-worker --network bench-net -e BOARDS_REDIS_URL=redis://bench-redis:6379/0 $tag worker >/dev/null"
"${hf[@]}" --runs 3 --prepare "$(fresh bench-worker); $worker_run && healthy bench-worker" \
  --command-name "docker stop, idle worker" \
  "docker stop bench-worker >/dev/null && test \$(docker inspect -f '{{.State.ExitCode}}' bench-worker) = 0"

echo "== size"
uv run --frozen poe image-inspect --tag "$tag"
