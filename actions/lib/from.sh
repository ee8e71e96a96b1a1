#!/usr/bin/env bash
# Sourced by the reading actions: turns the input `from` into a place offsite reads.
# github-artifacts with RUN_ID: that run's backup-* artifacts, fetched with
# `gh run download` (the documented restore path); without RUN_ID: the repository's
# artifacts read in place (gh-artifacts://OWNER/REPO, Range requests).
# Sets OFFSITE_FROM_RESOLVED.
from="${OFFSITE_FROM:-github-artifacts}"
from="${from#"${from%%[![:space:]]*}"}"
from="${from%"${from##*[![:space:]]}"}"
if [ "$from" = github-artifacts ]; then
  if [ -n "${RUN_ID:-}" ]; then
    dir="$RUNNER_TEMP/offsite-download-$RUN_ID"
    rm -rf "$dir"
    if [ -n "${OFFSITE_ID:-}" ] || [ -n "${ARTIFACT_NAME:-}" ]; then
      gh run download "$RUN_ID" --repo "$GITHUB_REPOSITORY" \
        --name "${ARTIFACT_NAME:-backup-$OFFSITE_ID}" --dir "$dir"
    else
      gh run download "$RUN_ID" --repo "$GITHUB_REPOSITORY" --pattern 'backup-*' --dir "$dir"
    fi
    from="$dir"
  else
    from="gh-artifacts://$GITHUB_REPOSITORY"
  fi
fi
export OFFSITE_FROM_RESOLVED="$from"
