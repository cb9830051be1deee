#!/bin/sh
# The entry point of the wasm-invoker image (deploy/image/; built by scripts/build-invoker-image).
#
# OpenWhisk's Ansible invoker role starts its invoker image with
#   /bin/sh -c "exec /init.sh --id N --uniqueName N >> /logs/invokerN_logs.log 2>&1"
# and the invoker's settings in the environment (OpenWhisk's names, read by wasm-invoker itself).
# This script takes the same arguments and `exec`s `wasm-invoker invoker` with them, so that the
# invoker is the container's main process's successor and gets the SIGTERM of `docker stop`.
#
# Arguments: --id N, --uniqueName S (or --unique-name S), --displayedName S (or --displayed-name S),
# --config FILE, each as two words or as --name=value. Anything else is refused (exit 64) with a
# message naming what is accepted.
#
# INVOKER_OPTS carries JVM options in OpenWhisk (-Dcom.sun.management.jmxremote..., -Xmx...): every
# word starting with a single `-` (and a bare word after one) is ignored, with one info line. Words
# starting with `--` (and a bare word after one) are wasm-invoker's and are appended to its arguments,
# e.g. INVOKER_OPTS="--config /conf/invoker.toml".
#
# RUST_LOG (the log filter) defaults to CONFIG_logback_log_level lower-cased (OpenWhisk's log level
# variable, INFO in its role), else `info`.
set -eu
# No globbing: INVOKER_OPTS is split into words, never expanded into file names.
set -f

BINARY=/bin/wasm-invoker
EX_USAGE=64

say() { printf 'init.sh: %s\n' "$*" >&2; }

usage_error() {
  say "$1"
  say "accepted: --id N --uniqueName S [--displayedName S] [--config FILE] (also --unique-name, --displayed-name, --name=value)"
  exit "$EX_USAGE"
}

# Check the arguments; they are passed on unchanged ("$@"), so values keep their spaces.
expect_value=""
for arg in "$@"; do
  if [ -n "$expect_value" ]; then
    expect_value=""
    continue
  fi
  case "$arg" in
    --id | --uniqueName | --unique-name | --displayedName | --displayed-name | --config)
      expect_value="$arg" ;;
    --id=* | --uniqueName=* | --unique-name=* | --displayedName=* | --displayed-name=* | --config=*) ;;
    *) usage_error "unknown argument: $arg" ;;
  esac
done
[ -z "$expect_value" ] || usage_error "$expect_value needs a value"

# INVOKER_OPTS: keep our options, ignore the JVM's.
ours=""
ignored=0
keep_next=""
for word in ${INVOKER_OPTS:-}; do
  case "$word" in
    --*) ours="$ours $word"; keep_next=yes ;;
    -*) ignored=$((ignored + 1)); keep_next="" ;;
    *)
      if [ "$keep_next" = yes ]; then ours="$ours $word"; else ignored=$((ignored + 1)); fi
      keep_next="" ;;
  esac
done
if [ "$ignored" -gt 0 ]; then
  say "INVOKER_OPTS: ignoring $ignored JVM option word(s); wasm-invoker reads its settings from the environment"
fi

if [ -z "${RUST_LOG:-}" ]; then
  level="$(printf '%s' "${CONFIG_logback_log_level:-info}" | tr 'A-Z' 'a-z')"
  case "$level" in
    error | warn | info | debug | trace) RUST_LOG="$level" ;;
    *) RUST_LOG=info ;;
  esac
  export RUST_LOG
fi

# $ours is split on whitespace on purpose, as the JVM splits INVOKER_OPTS.
# shellcheck disable=SC2086
exec "$BINARY" invoker "$@" $ours
