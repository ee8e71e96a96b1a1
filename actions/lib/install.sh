#!/usr/bin/env bash
# Installs offsite from this action's own checkout into a virtual environment, once per
# job (skipped when the same checkout is installed already), and the Debian packages the
# job needs: gnupg, and for database sources the client tools `offsite requirements`
# names (for PostgreSQL the client matching the server's major version, from
# apt.postgresql.org when Ubuntu's archive lacks it). Puts `offsite` on PATH for the
# following steps.
# Environment: OFFSITE_SOURCE, OFFSITE_CONFIG, OFFSITE_ONLY (what will be backed up),
# OFFSITE_DESTINATIONS (to choose the extras: gs:// → gcs, az:// → azure, sftp:// → sftp).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${OFFSITE_VENV:-${RUNNER_TEMP:-/tmp}/offsite-venv}"
python="${OFFSITE_PYTHON:-python3}"

destinations="${OFFSITE_DESTINATIONS:-}"
if [ -n "${OFFSITE_CONFIG:-}" ] && [ -f "$OFFSITE_CONFIG" ]; then
  destinations+=" $(cat "$OFFSITE_CONFIG")"
fi
extras=()
case "$destinations" in *gs://*) extras+=(gcs) ;; esac
case "$destinations" in *az://*) extras+=(azure) ;; esac
case "$destinations" in *sftp://*) extras+=(sftp) ;; esac
spec="$root"
if [ "${#extras[@]}" -gt 0 ]; then
  spec="$root[$(IFS=,; echo "${extras[*]}")]"
fi

# The stamp names the checkout's code and the extras: another checkout (another ref of
# offsite in the same job) or a new extra installs again; a later step with the same does not.
stamp="$venv/.offsite-stamp"
want="$(cd "$root" && find pyproject.toml src -type f -name '*.py' -o -name pyproject.toml \
  | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16) ${extras[*]:-}"
if [ -x "$venv/bin/offsite" ] && [ -f "$stamp" ] && grep -qxF "$want" "$stamp"; then
  echo "offsite $("$venv/bin/offsite" --version | awk '{print $NF}') already installed in $venv"
else
  echo "::group::Installing offsite from $root"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
  echo "$want" >> "$stamp"
  echo "::endgroup::"
fi
export PATH="$venv/bin:$PATH"
[ -z "${GITHUB_PATH:-}" ] || echo "$venv/bin" >> "$GITHUB_PATH"

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "::error::offsite needs $* and this runner has no apt-get: install them first"
    exit 2
  fi
  echo "::group::Installing $* with apt-get"
  $sudo apt-get update -qq
  local pgdg=false
  for package in "$@"; do
    case "$package" in
      postgresql-client-*)
        apt-cache show "$package" >/dev/null 2>&1 || pgdg=true ;;
    esac
  done
  if [ "$pgdg" = true ]; then
    # Ubuntu's archive carries one PostgreSQL major; the others come from PGDG.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql-common >/dev/null
    $sudo /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y >/dev/null
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  echo "::endgroup::"
}

# Two rounds: with no PostgreSQL client at all, the first installs one to ask the server
# its version with, the second the client matching it.
for round in 1 2; do
  listed="$(offsite requirements)"  # reads OFFSITE_SOURCE, OFFSITE_CONFIG, OFFSITE_ONLY
  mapfile -t packages <<< "$listed"
  [ -n "$listed" ] || packages=()
  [ "${#packages[@]}" -gt 0 ] || break
  if [ "$round" = 2 ] && [ "${packages[*]}" = "${previous:-}" ]; then
    echo "::error::offsite still lacks ${packages[*]} after installing them"
    exit 2
  fi
  apt_install "${packages[@]}"
  previous="${packages[*]}"
done
