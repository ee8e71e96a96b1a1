#!/usr/bin/env bash
# First step of every offsite action: mask the secrets it was given, before anything
# prints, and check the runner. Arguments: names of environment variables holding
# secrets (a value, or URLs one per line whose passwords are masked too).
# Outputs: python=true when the runner's python3 is 3.9 or newer; venv-key, the cache key
# of offsite's environment.
set -euo pipefail

for name in "$@"; do
  value="${!name:-}"
  [ -n "$value" ] || continue
  while IFS= read -r line; do
    trimmed="${line#"${line%%[![:space:]]*}"}"
    trimmed="${trimmed%"${trimmed##*[![:space:]]}"}"
    [ -n "$trimmed" ] || continue
    echo "::add-mask::$trimmed"
    # scheme://user:password@host → the password alone, as given and percent-decoded
    if [[ "$trimmed" =~ ^[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:([^/@]+)@ ]]; then
      password="${BASH_REMATCH[1]}"
      echo "::add-mask::$password"
      decoded="$(printf '%b' "${password//%/\\x}")"
      [ "$decoded" = "$password" ] || echo "::add-mask::$decoded"
    fi
  done <<< "$value"
done

if [ "${RUNNER_OS:-Linux}" != "Linux" ]; then
  echo "::error::offsite actions run on Linux runners (ubuntu-latest); this one is ${RUNNER_OS}"
  exit 2
fi

python_ok=false
version=3.12  # what setup-python installs when the runner has no python3 new enough
# (its patch release may move under a cached environment: install.sh's stamp sees that)
if command -v python3 >/dev/null 2>&1 \
  && python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  python_ok=true
  version="$(python3 -c 'import sys; print(sys.version.split()[0])')"
fi
echo "python=$python_ok" >> "${GITHUB_OUTPUT:-/dev/null}"
# the actions' cache key for offsite's environment: the locks, the OS, the Python
lib="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
locks="$(cat "$lib"/requirements*.txt | sha256sum | cut -c1-16)"
echo "venv-key=offsite-venv-${RUNNER_OS:-Linux}-${RUNNER_ARCH:-X64}-${ImageOS:-linux}-py$version-$locks" \
  >> "${GITHUB_OUTPUT:-/dev/null}"
