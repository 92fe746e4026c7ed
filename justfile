# boards: the entry point for people and CI. `just` lists the recipes.
# Every recipe calls a poe task (pyproject.toml) or a tool; none repeats a command line.

set shell := ["bash", "-euo", "pipefail", "-c"]

poe := "uv run --frozen poe"

# List the recipes
default:
    @just --list --unsorted

# Run the whole test suite: unit, integration, image and CI checks
test *args:
    {{poe}} test {{args}}

# Run the fast tier between edits: no image builds (unit, API and worker integration, docs)
test-fast *args:
    {{poe}} test-fast {{args}}

# Fault-injection suite on the real stack: load, faults, hostile input; prints the table
chaos *args:
    {{poe}} chaos {{args}}

# Run one workspace package's tests (e.g. `just test-package backend`)
test-package package *args:
    {{poe}} -C packages/{{package}} test {{args}}

# Lint and type-check one workspace package
lint-package package:
    {{poe}} -C packages/{{package}} lint
    {{poe}} -C packages/{{package}} typecheck

# Prove one workspace package stands alone: deptry, and its wheel installed in a clean venv
member-check package:
    tools/ci/member-check.sh {{quote(package)}}

# Lint the code: Python (ruff, mypy, import layers) and the Dockerfile (hadolint); workflows: `just ci-lint`
lint:
    {{poe}} lint

# Format the Python code in place
fmt:
    {{poe}} fmt

# Make a Docker engine with BuildKit answer (installs and starts one if needed)
engine:
    tools/engine/ensure-docker.sh

# Print BOARDS_*_IMAGE=... for the python, uv, postgres and redis images: the official ones, or local stand-ins built where they cannot be pulled (`eval "$(just standins)"`)
standins:
    {{poe}} standins

# Build the backend image (tag overridable: `just image boards-backend:dev`); the tool itself,
# not a poe task: `uv run poe` would add half a second to a re-build that has nothing to do
image tag="boards-backend:local":
    tools/image/build.sh --tag {{tag}}

# Lint the Dockerfile with hadolint (.hadolint.yaml)
image-lint:
    {{poe}} image-lint

# Print the image's size, layers, user, entrypoint and layer efficiency
image-inspect tag="boards-backend:local":
    {{poe}} image-inspect --tag {{tag}}

# Build (or reuse) the image and run the image test suite
image-test *args:
    {{poe}} image-test {{args}}

# Run the image tests against an already-built image (a tag or name@sha256:...), no build
image-verify image *args:
    BOARDS_TEST_IMAGE={{quote(image)}} {{poe}} image-verify {{args}}

# Runtime benchmark: API throughput and p99 (wrk), job round trip, worker drain
bench *args:
    {{poe}} bench {{args}}

# Soak: the bench stack at half its capacity for `--minutes N` (default 30), retention 120 s; RSS, p99, queue, jobs table, connections every 10 s
soak *args:
    {{poe}} soak {{args}}

# Builds, size, start-up, RSS, idle CPU and stop of the image beside a naive pip and a uv-docker-example image (`--rounds N`, `--cold`, `--only project`, `--idle-window S`)
image-compare *args:
    {{poe}} image-compare {{args}}

# Validate the workflows (schema, zizmor, policy), the Renovate config, the uv versions; member-check every package
ci-lint:
    {{poe}} ci-lint

# Check the docs against the code (settings, recipes, build args)
docs-test *args:
    {{poe}} docs-test {{args}}

# Build the image and run API + worker + PostgreSQL + Redis, then push one job through
demo:
    {{poe}} demo

# Stop the demo stack and delete its volumes
down:
    docker compose down --volumes

# Render a Kubernetes overlay to stdout: dev, production or autoscaling (deploy/kubernetes)
k8s-render overlay="dev":
    {{poe}} k8s-render {{overlay}}

# Check the Kubernetes manifests: render, schemas, restricted policy, Docker simulation (and a kind cluster when BOARDS_KIND_CLUSTER is set)
k8s-check *args:
    {{poe}} k8s-check {{args}}
