#!/usr/bin/env bash
# What the tests need beyond pip: Debian's chromium (browser end-to-end test), openssl (TLS test
# certificates), node + npm modules (Pomelo's own client codec, pomelo-protocol, and playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ -f tests/node/package.json ]; then
    (cd tests/node && npm install --no-audit --no-fund --silent >/dev/null)
fi
