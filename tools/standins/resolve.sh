#!/usr/bin/env bash
# Which image to use for a kind: the official one when it can be had, else the local stand-in.
#
#   resolve.sh KIND             print the image to use on stdout
#   resolve.sh --explain KIND   print "KIND<TAB>OFFICIAL<TAB>USED<TAB>official|standin<TAB>REASON"
#   resolve.sh --names KIND     print "OFFICIAL STANDIN" (tools/standins/build.sh --names)
#   resolve.sh --env            every kind: print BOARDS_<KIND>_IMAGE=USED lines, for `eval`,
#                               `set -a; . FILE` or $GITHUB_ENV (what `just standins` runs)
#
# KIND: python | uv | postgres | redis. In order:
#   1. BOARDS_<KIND>_IMAGE, when set, is used as given;
#   2. the official image (build.sh --names: the Dockerfile's ARG defaults, postgres:15,
#      redis:7) when it is present locally, or when one `docker pull` succeeds
#      (BOARDS_PULL_TIMEOUT seconds, default 30; BOARDS_IMAGES_PULL=0 skips pulling). A failed
#      pull is remembered for BOARDS_PULL_RETRY_AFTER seconds (default a day), so later calls
#      do not wait for it again; a present official image always wins;
#   3. else the stand-in, ensured by `build.sh KIND`, with a boxed warning on stderr.
# Whether the stand-in is up to date is build.sh's question (its recipe hash, about 1.5 s for
# python); the answer is remembered with a cheap fingerprint of the same inputs (the recipe
# files' contents, the settings the recipes read, PATH, the stand-in's image id) and asked
# again when that changes or after BOARDS_STANDIN_RECHECK_AFTER seconds (default a day: the
# machine's CPython, which the python recipe copies, is found through PATH and pyenv).
# Cache: BOARDS_IMAGES_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/boards/images; safe to delete).
# BOARDS_STANDIN_BUILDER: what ensures a stand-in (default build.sh; the tests give a stub).
# Exit codes: 0 answered, 1 no image can be had, 2 bad usage.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'resolve.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  printf 'usage: %s [--explain | --names] python|uv|postgres|redis | --env\n' "$0" >&2
  exit 2
}

# Sequential: the lines come out in a fixed order, each kind's notices just before its line.
if [ "${1:-}" = --env ]; then
  [ $# -eq 1 ] || usage
  for kind in python uv postgres redis; do
    used=$("$0" "$kind") || exit 1
    printf 'BOARDS_%s_IMAGE=%q\n' "${kind^^}" "$used"
  done
  exit 0
fi

mode=answer
case "${1:-}" in
  --explain) mode=explain; shift ;;
  --names) mode=names; shift ;;
  -h | --help) usage ;;
esac
[ $# -eq 1 ] || usage
KIND=$1
case "$KIND" in python | uv | postgres | redis) ;; *) usage ;; esac
[ "$mode" != names ] || exec "$HERE/build.sh" --names "$KIND"

# The boxed notice nobody can miss, lines wrapped, written at once (two resolvers may share a
# terminal).
loud() {
  local bar box line
  printf -v bar '%*s' 78 ''
  bar=${bar// /!}
  box=$'\n'$bar$'\n'
  while IFS= read -r line; do
    printf -v line '!!  %-72s!!' "$line"
    box+=$line$'\n'
  done < <(printf '%s\n' "$@" | fold -s -w 72)
  printf '%s%s\n\n' "$box" "$bar" >&2
}

# answer USED standin|official REASON: the one place that prints the result.
answer() {
  if [ "$mode" = explain ]; then
    printf '%s\t%s\t%s\t%s\t%s\n' "$KIND" "$OFFICIAL" "$1" "$2" "$3"
  else
    printf '%s\n' "$1"
  fi
  exit 0
}

explicit_var=BOARDS_${KIND^^}_IMAGE
explicit=${!explicit_var:-}
if [ -n "$explicit" ] && [ "$mode" = answer ]; then
  printf '%s\n' "$explicit"
  exit 0
fi
read -r OFFICIAL STANDIN < <("$HERE/build.sh" --names "$KIND") || true
[ -n "${STANDIN:-}" ] || die "build.sh --names $KIND gave no names"
[ -z "$explicit" ] || answer "$explicit" official "$explicit_var is set"

CACHE=${BOARDS_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boards/images}
printf -v NOW '%(%s)T' -1
# A cache entry's file name: the image name with anything but [A-Za-z0-9._-] as '_'; the entry
# also holds the name itself, which is compared, so two names never share an entry.
entry() { printf '%s/%s-%s' "$CACHE" "$1" "${2//[^A-Za-z0-9._-]/_}"; }

# One engine call for both names. docker prints one line per image found, in argument order,
# and nothing for a missing one; the stand-in is told apart by its tag.
FORMAT='{{.Id}} standin={{with .Config}}{{with .Labels}}{{index . "org.boards.standin"}}{{end}}{{end}}'
FORMAT+=' tags=,{{range .RepoTags}}{{.}},{{end}}'
inspect() { docker image inspect -f "$FORMAT" "$OFFICIAL" "$STANDIN" 2>/dev/null || true; }
mapfile -t found < <(inspect)
if [ "${#found[@]}" = 0 ] && ! docker version -f '{{.Server.Version}}' >/dev/null 2>&1; then
  "$HERE/../engine/ensure-docker.sh"
  mapfile -t found < <(inspect)
fi
official_line="" standin_id=""
case "${#found[@]}" in
  2) official_line=${found[0]} standin_id=${found[1]%% *} ;;
  1) if [[ ${found[0]} == *" tags="*",$STANDIN,"* ]]; then standin_id=${found[0]%% *}; else official_line=${found[0]}; fi ;;
esac

if [ -n "$official_line" ]; then
  if [[ $official_line == *" standin=true "* ]]; then
    loud "NOTE: THE LOCAL IMAGE $OFFICIAL IS A RETAGGED STAND-IN," \
      "NOT THE OFFICIAL IMAGE. USING IT UNDER THE OFFICIAL NAME."
  fi
  answer "$OFFICIAL" official "present locally"
fi

# Pull once, unless pulling is off or failed lately.
pull_failed=$(entry pull-failed "$OFFICIAL")
case "${BOARDS_IMAGES_PULL:-1}" in
  0 | false | no) failure="pulling is disabled (BOARDS_IMAGES_PULL=0)" ;;
  *)
    failure=""
    if [ -f "$pull_failed" ]; then
      { read -r expires name && read -r reason; } <"$pull_failed" || true
      if [ "${name:-}" = "$OFFICIAL" ] && [ "${expires:-0}" -gt "$NOW" ] 2>/dev/null; then
        TZ=UTC printf -v when '%(%Y-%m-%d %H:%M UTC)T' "$expires"
        failure="$reason (remembered; next pull after $when)"
      fi
    fi
    if [ -z "$failure" ]; then
      timeout=${BOARDS_PULL_TIMEOUT:-30}
      log "pulling $OFFICIAL (at most $timeout s)"
      status=0
      output=$(timeout --kill-after=5 "$timeout" docker pull --quiet "$OFFICIAL" 2>&1) || status=$?
      if [ "$status" = 0 ]; then
        rm -f "$pull_failed"
        answer "$OFFICIAL" official pulled
      elif [ "$status" = 124 ]; then
        failure="no answer within $timeout s"
      else
        failure=$(tr -s '[:space:]' ' ' <<<"$output" | sed 's/ $//')
        failure=${failure:-docker pull exited $status}
      fi
      mkdir -p "$CACHE"
      printf '%s %s\n%s\n' "$((NOW + ${BOARDS_PULL_RETRY_AFTER:-86400}))" "$OFFICIAL" "$failure" \
        >"$pull_failed.$$" && mv -f "$pull_failed.$$" "$pull_failed"
    fi
    ;;
esac

# The stand-in: reuse it while the fingerprint of its recipe's inputs (every file here but the
# docs, which covers what build.sh hashes) is the one remembered with its image id; else ask
# build.sh, which reuses it or rebuilds it.
fingerprint() {
  local f files=() v print
  shopt -s globstar nullglob
  for f in "$HERE"/**; do [ -f "$f" ] && [ "${f%.md}" = "$f" ] && files+=("$f"); done
  read -r print _ < <({
    printf 'v1 kind=%s official=%s standin=%s\n' "$KIND" "$OFFICIAL" "$STANDIN"
    for v in PATH BOARDS_STANDIN_PYTHON BOARDS_DEBIAN_SUITE BOARDS_DEBIAN_MIRROR BOARDS_DEBIAN_SECURITY_MIRROR; do
      printf '%s=%s\n' "$v" "${!v-}"
    done
    sha256sum "${files[@]}"
  } | sha256sum)
  printf '%s\n' "$print"
}
memo=$(entry standin "$STANDIN")
print=$(fingerprint)
used=""
if [ -n "$standin_id" ] && [ -f "$memo" ]; then
  { read -r expires memo_print memo_id; } <"$memo" || true
  if [ "${memo_print:-}" = "$print" ] && [ "${memo_id:-}" = "$standin_id" ] \
    && [ "${expires:-0}" -gt "$NOW" ] 2>/dev/null; then
    used=$STANDIN
  fi
fi
if [ -z "$used" ]; then
  builder=${BOARDS_STANDIN_BUILDER:-$HERE/build.sh}
  used=$("$builder" "$KIND") || die "$builder $KIND failed; no image for $KIND"
  [ "$used" = "$STANDIN" ] || die "build.sh $KIND answered '$used', expected '$STANDIN'"
  if id=$(docker image inspect -f '{{.Id}}' "$STANDIN" 2>/dev/null); then
    mkdir -p "$CACHE"
    printf '%s %s %s\n' "$((NOW + ${BOARDS_STANDIN_RECHECK_AFTER:-86400}))" "$print" "$id" \
      >"$memo.$$" && mv -f "$memo.$$" "$memo"
  fi
fi

loud "USING STAND-IN IMAGE $STANDIN" \
  "IN PLACE OF THE OFFICIAL $OFFICIAL," \
  "WHICH IS NOT PRESENT LOCALLY AND CANNOT BE PULLED:" \
  "pull: $failure" \
  "Stand-ins are built from Debian's archive: tools/standins/README.md."
answer "$STANDIN" standin "pull failed: $failure"
