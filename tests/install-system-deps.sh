#!/usr/bin/env bash
# What the tests need beyond pip: Debian's chromium (browser end-to-end test), openssl (TLS test
# certificates), node + npm modules (Pomelo's own client codec, pomelo-protocol, and playwright-core),
# and the real services the distributed tests start on free loopback ports: ZooKeeper (master HA),
# redis-server (the Redis store) and OpenSSH's sshd (servers on other hosts).
# Only packages are installed here; no service is enabled or started (tests start their own).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
need_services=()
[ -f /usr/share/java/zookeeper.jar ] || need_services+=(zookeeper)
command -v redis-server >/dev/null 2>&1 || need_services+=(redis-server)
[ -x /usr/sbin/sshd ] || need_services+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_services+=(openssh-client)
if [ $((${#need_apt[@]} + ${#need_services[@]})) -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    if [ ${#need_apt[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
    fi
    if [ ${#need_services[@]} -gt 0 ]; then
        # --no-install-recommends: zookeeper would otherwise pull in zookeeperd, an init script on 2181
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            "${need_services[@]}" >/dev/null
    fi
fi

if [ -f tests/node/package.json ]; then
    (cd tests/node && npm install --no-audit --no-fund --silent >/dev/null)
fi
