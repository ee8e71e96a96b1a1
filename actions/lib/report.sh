#!/usr/bin/env bash
# Runs `offsite VERB ARGS... --json`, shows the record, and sets the outputs `report` (the
# JSON record) and `healthy` (true when offsite exited 0); exits with offsite's code.
set -uo pipefail
report="$(mktemp "${RUNNER_TEMP:-/tmp}/offsite-report-XXXXXX")"
offsite "$@" --json > "$report"
code=$?
cat "$report"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  delimiter="offsite_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  {
    echo "report<<$delimiter"
    cat "$report"
    echo "$delimiter"
    if [ "$code" = 0 ]; then echo "healthy=true"; else echo "healthy=false"; fi
  } >> "$GITHUB_OUTPUT"
fi
rm -f "$report"
exit "$code"
