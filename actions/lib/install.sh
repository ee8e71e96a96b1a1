#!/usr/bin/env bash
# Installs offsite from this action's own checkout into a virtual environment, once per
# job (and, with the actions' cache, once per lock: a restored environment is reused),
# and the Debian packages the job needs: gnupg, and for database sources the client tools
# `offsite requirements` names (for PostgreSQL the client matching the server's major
# version, from apt.postgresql.org when Ubuntu's archive lacks it).
# Reproducible: the dependencies come from actions/lib/requirements*.txt, every one
# pinned and checked against its hashes (pip --require-hashes; scripts/lock refreshes
# them); offsite itself is this checkout's source, on the environment's path. Only
# `offsite` is put on the job's PATH (a folder holding that one program), never the
# environment's python, pip or the dependencies' scripts.
# Environment: OFFSITE_SOURCE, OFFSITE_CONFIG, OFFSITE_ONLY (what will be backed up),
# OFFSITE_PYTHON (the interpreter to build the environment with; setup-python's).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${OFFSITE_VENV:-${RUNNER_TEMP:-/tmp}/offsite-venv}"
python="${OFFSITE_PYTHON:-python3}"

lock="$root/actions/lib/requirements.txt"  # with the storage extras: one for every action

# The stamp names the lock installed and the interpreter it was built with: another lock,
# or an interpreter that moved (a runner image's or setup-python's new patch release,
# under a cached environment whose python is a link to the old one), installs afresh.
stamp="$venv/.offsite-stamp"
interpreter="$("$python" -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version.split()[0])')"
want="$(sha256sum "$lock" | cut -c1-16) $interpreter"
if "$venv/bin/python" -c '' 2>/dev/null && [ -f "$stamp" ] && grep -qxF "$want" "$stamp"; then
  echo "offsite's dependencies already installed in $venv"
else
  echo "::group::Installing offsite's dependencies from $(basename "$lock")"
  rm -rf "$venv"  # whatever was there (another lock, a dangling interpreter) goes
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --require-hashes -r "$lock"
  echo "$want" >> "$stamp"
  echo "::endgroup::"
fi
# offsite: this checkout's source on the environment's path, and its program (both
# written on every run: a cached environment may come from another checkout)
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$root/src" > "$site/offsite-checkout.pth"
printf '#!%s\nfrom offsite.launch import main\nmain()\n' "$venv/bin/python" > "$venv/bin/offsite"
chmod +x "$venv/bin/offsite"
bin="${RUNNER_TEMP:-/tmp}/offsite-bin"
mkdir -p "$bin"
ln -sfn "$venv/bin/offsite" "$bin/offsite"
echo "offsite $("$bin/offsite" --version | awk '{print $NF}') from $root"
export PATH="$bin:$PATH"
[ -z "${GITHUB_PATH:-}" ] || echo "$bin" >> "$GITHUB_PATH"

# shellcheck source=actions/lib/apt.sh
source "$root/actions/lib/apt.sh"
install_requirements  # reads OFFSITE_SOURCE, OFFSITE_CONFIG, OFFSITE_ONLY
