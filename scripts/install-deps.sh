#!/usr/bin/env bash
# Install what the lab and the tests need on a Debian 12 machine, and start
# the docker engine. Safe to run again: every step checks before it acts.
#
#   scripts/install-deps.sh          # system packages, dockerd, .venv
#   scripts/install-deps.sh --venv   # only the Python virtual environments
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "deps: $*"; }

install_system_packages() {
    local wanted=(docker.io debootstrap busybox-static python3-venv git make qemu-system-x86 qemu-utils fdisk)
    local missing=()
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if ((${#missing[@]})); then
        if [[ $EUID -ne 0 ]]; then
            echo "error: missing packages ${missing[*]}; run this script as root or install them with apt-get" >&2
            exit 1
        fi
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

start_docker() {
    if docker info >/dev/null 2>&1; then
        return
    fi
    if [[ -d /run/systemd/system ]]; then
        log "starting docker.service"
        systemctl start docker.service
    else
        # No systemd as PID 1 (a container or a CI sandbox): run dockerd directly.
        log "starting dockerd (log: /var/log/dockerd.log)"
        nohup dockerd >/var/log/dockerd.log 2>&1 &
    fi
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return
        sleep 1
    done
    echo "error: dockerd did not start within 60 s; see /var/log/dockerd.log" >&2
    exit 1
}

# A virtual environment is rebuilt only when its requirements change.
make_venv() {
    local dir=$1 requirements=$2
    local stamp="$dir/.requirements.sha256"
    local want
    want=$(sha256sum "$requirements" requirements*.txt | sha256sum | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    log "creating $dir from $requirements"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --upgrade pip
    "$dir/bin/pip" install -q -r "$requirements"
    echo "$want" >"$stamp"
}

if [[ "${1:-}" != "--venv" ]]; then
    install_system_packages
    start_docker
fi
make_venv .venv requirements-dev.txt
# checkov brings bc-python-hcl2, whose `hcl2` module would shadow python-hcl2's
# in a shared venv, so it gets one of its own.
make_venv .venv-checkov requirements-checkov.txt
log "ready"
