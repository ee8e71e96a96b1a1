#!/usr/bin/env bash
# The backup step of the offsite actions: `offsite backup` with every option from the
# environment (OFFSITE_*), into a folder of the runner when no destination is given;
# `github-artifacts` among the destinations is the folder the next step uploads.
# ENTRY_NAME names the entry of a single source.
set -euo pipefail
export OFFSITE_TO="${OFFSITE_TO:-$RUNNER_TEMP/offsite-sets}"
export OFFSITE_ARTIFACTS_DIR="$RUNNER_TEMP/offsite-artifacts"
if [ -n "${ENTRY_NAME:-}" ] && [ -n "${OFFSITE_SOURCE:-}" ]; then
  source_url="$(printf '%s\n' "$OFFSITE_SOURCE" | sed -e '/^[[:space:]]*$/d' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')"
  if [ "$(printf '%s\n' "$source_url" | wc -l)" != 1 ]; then
    echo "offsite: error: name: names the entry of one source, and several are given" >&2
    echo "::error::name: names the entry of one source, and several are given"
    exit 2
  fi
  export OFFSITE_NAME="$ENTRY_NAME=$source_url"
  unset OFFSITE_SOURCE
fi
exec offsite backup
