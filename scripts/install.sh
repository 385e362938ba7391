#!/usr/bin/env bash
# Create .venv and install mosn-py into it.   bash scripts/install.sh [--test]
#   --test  also install what the test suite needs (Python extras and system packages).
# Works on a fresh Debian 12 (Python 3.11); installs python3-venv with apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    # apt_install PKG... : install the Debian packages that are missing.
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing system packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

PY=${PYTHON:-python3}
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
fi
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "${1:-}" = "--test" ]; then
    # System peers the tests talk to (real servers and clients on 127.0.0.1).
    # iptables, iproute2 and util-linux (setpriv): the sidecar tests in network namespaces.
    apt_install curl procps iproute2 openssl nghttp2-client redis-server redis-tools memcached \
        iptables util-linux
    .venv/bin/python -m pip install -q -e '.[test]'
else
    .venv/bin/python -m pip install -q .
fi
