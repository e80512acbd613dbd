#!/usr/bin/env bash
# Build the Debian 12 systemd image that lab hosts and Molecule scenarios run
# as, offline from Debian's packages (no container registry is needed).
#
# The image tag is a hash of this script's inputs, so an unchanged recipe
# finds its image and returns in seconds instead of running debootstrap again.
#
# Usage: scripts/build-host-image.sh [--print-tag]
set -euo pipefail

repo_name="mlinfra/debian12-systemd"
suite="bookworm"
mirror="${MLINFRA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,gnupg,iproute2,procps,apt-transport-https,kmod"

# Everything that changes the image goes into the hash.
recipe_hash="$(printf '%s\n' "$suite" "$packages" "$(sed -n '/^# recipe-start/,/^# recipe-end/p' "$0")" | sha256sum | cut -c1-12)"
tag="${repo_name}:${recipe_hash}"

if [[ "${1:-}" == "--print-tag" ]]; then
    echo "$tag"
    exit 0
fi

if ! docker info >/dev/null 2>&1; then
    echo "error: the docker engine is not reachable; install docker.io and start dockerd (make deps does both)" >&2
    exit 1
fi

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    echo "error: debootstrap is missing; install it with: apt-get install debootstrap" >&2
    exit 1
fi

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

# recipe-start
debootstrap --variant=minbase --include="$packages" "$suite" "$workdir/root" "$mirror" >&2

# A container has no consoles, no udev and no kernel of its own: units that
# wait for them would only slow the boot or fail.
for unit in getty.target console-getty.service systemd-udevd.service \
    systemd-udev-trigger.service systemd-modules-load.service \
    systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount \
    systemd-firstboot.service; do
    ln -sf /dev/null "$workdir/root/etc/systemd/system/$unit"
done

# Package lists are left out of the image. The lists folder gets an old
# timestamp, so apt's cache_valid_time treats the cache as stale and updates it.
rm -rf "$workdir/root/var/lib/apt/lists/"* "$workdir/root/var/cache/apt/"*.bin
touch -d "2000-01-01" "$workdir/root/var/lib/apt/lists"
echo "deb $mirror $suite main contrib non-free non-free-firmware" > "$workdir/root/etc/apt/sources.list"
echo "deb $mirror $suite-updates main contrib non-free non-free-firmware" >> "$workdir/root/etc/apt/sources.list"
# recipe-end

tar -C "$workdir/root" -c . | docker import \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=docker' \
    - "$tag" >&2
docker tag "$tag" "${repo_name}:latest"
echo "$tag"
