#!/usr/bin/env bash
# After actions/upload-artifact: the set's summary, now that the upload happened, with
# what GitHub says it stored (the artifact's id, address and digest).
# Environment: SUMMARY_FILE (the backup step's artifact-summary), ARTIFACT_NAME,
# ARTIFACT_ID, ARTIFACT_URL, ARTIFACT_DIGEST.
set -euo pipefail
[ -n "${GITHUB_STEP_SUMMARY:-}" ] || exit 0
{
  if [ -n "${SUMMARY_FILE:-}" ] && [ -f "$SUMMARY_FILE" ]; then
    cat "$SUMMARY_FILE"
    echo
  fi
  echo
  echo "Uploaded as artifact \`${ARTIFACT_NAME:-}\` (id ${ARTIFACT_ID:-?}${ARTIFACT_DIGEST:+, digest \`$ARTIFACT_DIGEST\`}): ${ARTIFACT_URL:-}"
} >> "$GITHUB_STEP_SUMMARY"
