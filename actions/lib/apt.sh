#!/usr/bin/env bash
# Sourced by install.sh (what a backup needs) and the reading steps (what restoring a set
# needs: `offsite requirements --restore DEST`): installs with apt what offsite names.
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

# What `offsite requirements ARGS...` names, installed. Two rounds: with no PostgreSQL
# client at all, the first installs one to ask the server its version with, the second
# the client matching it.
install_requirements() {
  local round listed previous=""
  local -a packages
  for round in 1 2; do
    listed="$(offsite requirements "$@")"
    mapfile -t packages <<< "$listed"
    [ -n "$listed" ] || packages=()
    [ "${#packages[@]}" -gt 0 ] || break
    if [ "$round" = 2 ] && [ "${packages[*]}" = "$previous" ]; then
      echo "::error::offsite still lacks ${packages[*]} after installing them"
      exit 2
    fi
    apt_install "${packages[@]}"
    previous="${packages[*]}"
  done
}
