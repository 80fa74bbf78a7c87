#!/usr/bin/env bash
# Installs the Debian packages the tests start for real, when any is missing: nftables and
# iproute2 (kernel-level cuts in network namespaces), chromium (browser tests), redis-server and
# haproxy (the cluster). Run by `pnpm test` and by CI, so the README's test command needs nothing
# installed by hand. Without root or apt-get it says what is missing and goes on: those tests then
# skip, except under CI, where they fail.
set -euo pipefail

missing=()
have() { PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1; }
have nft || missing+=(nftables)
have ip || missing+=(iproute2)
have chromium || missing+=(chromium)
have redis-server || missing+=(redis-server)
have haproxy || missing+=(haproxy)

if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: not installed (needs root and apt-get): ${missing[*]}; the tests that use them will skip" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
