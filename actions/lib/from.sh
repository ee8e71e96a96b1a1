#!/usr/bin/env bash
# Sourced by the reading actions: turns the input `from` into a place offsite reads.
# github-artifacts with RUN_ID: that run's backup-* artifacts, which the action's
# actions/download-artifact step fetched into DOWNLOADED, each checked against the digest
# upload-artifact recorded (else fetched here with `gh run download`, the documented
# restore path by hand); without RUN_ID: the repository's artifacts read in place
# (gh-artifacts://OWNER/REPO, Range requests).
# ARTIFACTS_REPOSITORY: another repository's artifacts (OWNER/REPO; the token must read it).
# Sets OFFSITE_FROM_RESOLVED.
from="${OFFSITE_FROM:-github-artifacts}"
from="${from#"${from%%[![:space:]]*}"}"
from="${from%"${from##*[![:space:]]}"}"
repository="${ARTIFACTS_REPOSITORY:-$GITHUB_REPOSITORY}"
if [ "$from" = github-artifacts ] && [ -n "${DOWNLOADED:-}" ]; then
  from="$DOWNLOADED"  # actions/download-artifact fetched them and checked their digests
elif [ "$from" = github-artifacts ]; then
  if [ -n "${RUN_ID:-}" ]; then
    dir="$RUNNER_TEMP/offsite-download-$RUN_ID"
    rm -rf "$dir"
    if [ -n "${OFFSITE_ID:-}" ] || [ -n "${ARTIFACT_NAME:-}" ]; then
      gh run download "$RUN_ID" --repo "$repository" \
        --name "${ARTIFACT_NAME:-backup-$OFFSITE_ID}" --dir "$dir"
    else
      gh run download "$RUN_ID" --repo "$repository" --pattern 'backup-*' --dir "$dir"
    fi
    from="$dir"
  else
    from="gh-artifacts://$repository"
  fi
fi
export OFFSITE_FROM_RESOLVED="$from"
