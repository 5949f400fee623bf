#!/usr/bin/env bash
# Install Debian's nginx (with http_secure_link_module) and, with --bench, wrk.
# Idempotent: does nothing when they are already there. Never starts the system nginx.
set -euo pipefail

packages=()
nginx_bin=$(PATH="$PATH:/usr/sbin:/sbin" command -v nginx || true)
if [ -z "$nginx_bin" ]; then
  packages+=(nginx)
elif ! "$nginx_bin" -V 2>&1 | grep -q -- --with-http_secure_link_module; then
  echo "error: $nginx_bin lacks http_secure_link_module; install Debian's 'nginx' package" >&2
  exit 1
fi
if [ "${1:-}" = "--bench" ] && ! command -v wrk >/dev/null; then
  packages+=(wrk)
fi
[ ${#packages[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: installing ${packages[*]} needs root or sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "Installing Debian packages: ${packages[*]}"
# Keep the package's post-install step from starting a system nginx on port 80.
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  created_policy=yes
fi
cleanup() { [ -n "$created_policy" ] && $sudo rm -f "$policy"; return 0; }
trap cleanup EXIT
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
