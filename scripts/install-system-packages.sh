#!/usr/bin/env bash
# Install Debian's nginx (with http_secure_link_module) and its lua module (HMAC-SHA256 links,
# not-before times, the counters of download-limited links); with --test also PostgreSQL's
# server (the tests start a throwaway cluster of their own), ffmpeg (a real HLS client) and
# Chromium (a real browser); with --bench also wrk, perf, strace, and the njs and set-misc modules
# (the benchmark's comparison of HMAC engines; never loaded by the shipped config).
# Idempotent: does nothing when they are already there. Never starts a system service.
set -euo pipefail

for_tests=""; for_bench=""
for argument in "$@"; do
  case "$argument" in
    --test) for_tests=yes ;;
    --bench) for_bench=yes ;;
    *) echo "usage: $0 [--test] [--bench]" >&2; exit 2 ;;
  esac
done

packages=()
nginx_bin=$(PATH="$PATH:/usr/sbin:/sbin" command -v nginx || true)
if [ -z "$nginx_bin" ]; then
  packages+=(nginx)
elif ! "$nginx_bin" -V 2>&1 | grep -q -- --with-http_secure_link_module; then
  echo "error: $nginx_bin lacks http_secure_link_module; install Debian's 'nginx' package" >&2
  exit 1
fi
if [ ! -e /usr/lib/nginx/modules/ngx_http_lua_module.so ]; then
  packages+=(libnginx-mod-http-lua)  # brings ndk and lua-resty-core
fi
if [ -n "$for_tests" ] && ! command -v ffmpeg >/dev/null; then
  packages+=(ffmpeg)
fi
if [ -n "$for_tests" ] && ! command -v chromium >/dev/null; then
  packages+=(chromium)
fi
if [ -n "$for_tests" ] && ! command -v curl >/dev/null; then
  packages+=(curl)
fi
if { [ -n "$for_tests" ] || [ -n "$for_bench" ]; } && ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  packages+=(postgresql)
fi
if [ -n "$for_bench" ] && ! command -v wrk >/dev/null; then
  packages+=(wrk)
fi
if [ -n "$for_bench" ] && [ ! -e /usr/lib/nginx/modules/ngx_http_js_module.so ]; then
  packages+=(libnginx-mod-http-js)
fi
if [ -n "$for_bench" ] && [ ! -e /usr/lib/nginx/modules/ngx_http_set_misc_module.so ]; then
  packages+=(libnginx-mod-http-set-misc)
fi
if [ -n "$for_bench" ] && ! command -v strace >/dev/null; then
  packages+=(strace)  # the syscalls per request (benchmarks/syscalls.py)
fi
if [ -n "$for_bench" ] && ! command -v perf >/dev/null; then
  packages+=(linux-perf)  # the profile of where nginx's CPU goes
fi
[ ${#packages[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: installing ${packages[*]} needs root or sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "Installing Debian packages: ${packages[*]}"
# Keep the packages' post-install steps from starting a system nginx or PostgreSQL.
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
