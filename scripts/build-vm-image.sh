#!/usr/bin/env bash
# Build the Debian 12 disk image that the VM test tier boots, offline from
# Debian's packages: debootstrap, Debian's cloud kernel, GRUB on a BIOS disk,
# and SSH with a throwaway key for root.
#
# The image boots the cloud kernel of the bookworm suite. The newer cloud
# kernel of bookworm-security, its headers, GRUB and the NVIDIA driver
# packages are downloaded into apt's archive cache in the image (not
# installed), so that a test can install them in the VM without waiting for
# the network.
#
# Output, in the cache directory (default .cache/vm-images, ignored by git):
#   debian12-vm-<hash>.qcow2     the disk image; tests boot overlays of it
#   debian12-vm-<hash>.key       the SSH private key for root
#   debian12-vm-<hash>.json      kernel releases: boot_kernel, newer_kernel
# <hash> is a hash of the recipe in this script, so an unchanged recipe finds
# its image and returns at once. The script prints the path of the .json file.
#
# Usage: scripts/build-vm-image.sh [--print-name | --print-qemu-options]
# Needs root, debootstrap, sfdisk (fdisk), qemu-system-x86 and qemu-utils.
# Environment: MLINFRA_VM_ACCEL (auto, kvm or tcg), MLINFRA_VM_CPU (QEMU CPU model),
# MLINFRA_VM_FIRST_BOOT_TIMEOUT (seconds), MLINFRA_VM_CACHE (cache directory).
set -euo pipefail
cd "$(dirname "$0")/.."

cache_dir="${MLINFRA_VM_CACHE:-$PWD/.cache/vm-images}"
mirror="${MLINFRA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${MLINFRA_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# QEMU accelerator and CPU model, shared with the Molecule scenario through
# --print-qemu-options. "auto" picks KVM where /dev/kvm is writable, except
# under the kvm_pvm module: kvm_pvm runs an unmodified guest kernel by
# emulating its privileged code, and on the build machines it stopped
# Debian's cloud kernel with "KVM internal error. Suberror: 1" (on cmpxchg16b,
# then on xrstor) or left it without a sign of life for 6 minutes, where
# QEMU's emulator (tcg) booted it and installed GRUB in under 2 minutes.
# -cpu host and -cpu max abort there, so KVM gets qemu64 without those two
# instruction sets.
qemu_accel="${MLINFRA_VM_ACCEL:-auto}"
if [[ "$qemu_accel" == auto ]]; then
    if [[ -w /dev/kvm && ! -d /sys/module/kvm_pvm ]]; then
        qemu_accel=kvm
    else
        qemu_accel=tcg
    fi
fi
if [[ "$qemu_accel" == kvm ]]; then
    qemu_cpu="${MLINFRA_VM_CPU:-qemu64,-cx16,-xsave}"
else
    qemu_cpu="${MLINFRA_VM_CPU:-qemu64}"
fi
first_boot_timeout="${MLINFRA_VM_FIRST_BOOT_TIMEOUT:-900}"
# Only the recipe (between the recipe-start and recipe-end lines) goes into
# the hash, so that changes to how QEMU runs keep the cached image.
# NOTE: the hash does not cover Debian's archive. Once the archive drops the
# image's newer kernel, the role finds no headers for it in the VM: delete the
# cached image to build a new one.
recipe_hash="$(sed -n '/^# recipe-start/,/^# recipe-end/p' "$0" | sha256sum | cut -c1-12)"
name="debian12-vm-${recipe_hash}"

if [[ "${1:-}" == "--print-name" ]]; then
    echo "$cache_dir/$name"
    exit 0
fi
if [[ "${1:-}" == "--print-qemu-options" ]]; then
    echo "-accel $qemu_accel -cpu $qemu_cpu"
    exit 0
fi

if [[ -f "$cache_dir/$name.json" ]]; then
    echo "$cache_dir/$name.json"
    exit 0
fi

for tool in debootstrap sfdisk qemu-system-x86_64 qemu-img ssh-keygen; do
    if ! command -v "$tool" >/dev/null; then
        echo "error: $tool is missing; run scripts/install-deps.sh as root" >&2
        exit 1
    fi
done
if [[ $EUID -ne 0 ]]; then
    echo "error: building the VM image needs root (loop devices, mount, chroot)" >&2
    exit 1
fi
if [[ "$qemu_accel" == kvm && ! -w /dev/kvm ]]; then
    echo "error: MLINFRA_VM_ACCEL=kvm, but /dev/kvm is missing or not writable; use MLINFRA_VM_ACCEL=tcg" >&2
    exit 1
fi

log() { echo "build-vm-image: $*" >&2; }

workdir="$(mktemp -d)"
root="$workdir/root"
loop=""
cleanup() {
    for mountpoint in "$root/proc" "$root"; do
        mountpoint -q "$mountpoint" && umount "$mountpoint"
    done
    [[ -n "$loop" ]] && losetup -d "$loop"
    rm -rf "$workdir"
}
trap cleanup EXIT

# recipe-start
# Loop devices here do not scan partitions, so the file system is made on a
# loop device that starts at the partition's offset (sector 2048).
log "creating the disk and the root file system"
truncate -s 8G "$workdir/disk.raw"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$workdir/disk.raw"
loop="$(losetup -f --show -o $((2048 * 512)) "$workdir/disk.raw")"
mkfs.ext4 -q -L mlinfra-root "$loop"
mkdir "$root"
mount "$loop" "$root"

log "running debootstrap (about 2 minutes)"
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,udev,kmod,dbus,openssh-server,python3,python3-apt,initramfs-tools,linux-image-cloud-amd64,ca-certificates,iproute2,procps,e2fsprogs \
    bookworm "$root" "$mirror" >"$workdir/debootstrap.log" 2>&1 || {
    tail -20 "$workdir/debootstrap.log" >&2
    exit 1
}
boot_kernel="$(ls "$root/lib/modules")"

cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
EOF
# The non-free section is only for the download below: the role under test
# must add it itself.
echo "deb $mirror bookworm non-free non-free-firmware contrib" >"$root/etc/apt/sources.list.d/download-only.list"
mount -t proc proc "$root/proc"
chroot "$root" apt-get update -qq

newer_kernel="$(chroot "$root" apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: linux-image-\(.*\)$/\1/p' | head -1)"
if [[ -z "$newer_kernel" || "$newer_kernel" == "$boot_kernel" ]]; then
    # NOTE: right after a Debian point release, bookworm-security may carry no
    # kernel newer than bookworm's, and the pending-kernel test has nothing to install.
    echo "error: bookworm-security has no cloud kernel newer than $boot_kernel, so the pending-kernel case cannot run" >&2
    exit 1
fi
log "boot kernel $boot_kernel, newer kernel $newer_kernel"

log "downloading GRUB, the newer kernel with its headers, DKMS and the NVIDIA driver packages"
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -qq --download-only --no-install-recommends \
    grub-pc "linux-image-$newer_kernel" "linux-headers-$newer_kernel" "linux-headers-$boot_kernel" dkms \
    nvidia-kernel-dkms nvidia-open-kernel-dkms nvidia-smi libcuda1 libnvidia-ml1 nvidia-persistenced >/dev/null
rm "$root/etc/apt/sources.list.d/download-only.list"
chroot "$root" apt-get update -qq
umount "$root/proc"

log "configuring the guest"
echo "mlinfra-vm" >"$root/etc/hostname"
echo "LABEL=mlinfra-root / ext4 errors=remount-ro 0 1" >"$root/etc/fstab"
# QEMU's user-mode network: DHCP, and DNS at 10.0.2.3.
cat >"$root/etc/systemd/network/10-dhcp.network" <<'EOF'
[Match]
Name=en*

[Network]
DHCP=yes
EOF
echo "nameserver 10.0.2.3" >"$root/etc/resolv.conf"
ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
# apt's daily timers would take the dpkg lock in the middle of a test.
for unit in apt-daily.timer apt-daily-upgrade.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
mkdir -p "$root/etc/default/grub.d"
cat >"$root/etc/default/grub.d/mlinfra.cfg" <<'EOF'
GRUB_TIMEOUT=0
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
EOF

ssh-keygen -q -t ed25519 -N "" -C "mlinfra test VM" -f "$workdir/key"
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$workdir/key.pub" "$root/root/.ssh/authorized_keys"

# GRUB needs the disk's partitions, which only the guest's own kernel sees,
# so a first boot (straight into the kernel) installs it and powers off.
cat >"$root/usr/local/sbin/mlinfra-install-grub" <<'EOF'
#!/bin/sh
set -e
echo "grub-pc grub-pc/install_devices multiselect /dev/vda" | debconf-set-selections
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-download --no-install-recommends grub-pc
grub-install /dev/vda
update-grub
rm /etc/systemd/system/multi-user.target.wants/mlinfra-install-grub.service
touch /var/lib/mlinfra-install-grub.done
EOF
chmod 0755 "$root/usr/local/sbin/mlinfra-install-grub"
cat >"$root/etc/systemd/system/mlinfra-install-grub.service" <<'EOF'
[Unit]
Description=Install GRUB on the first boot of the test image
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/mlinfra-install-grub
ExecStopPost=/bin/systemctl --no-block poweroff

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/mlinfra-install-grub.service "$root/etc/systemd/system/multi-user.target.wants/"

# recipe-end

cp "$root/boot/vmlinuz-$boot_kernel" "$root/boot/initrd.img-$boot_kernel" "$workdir/"
umount "$root"
losetup -d "$loop"
loop=""

# The guest has no console, so the result is read from its disk afterwards.
log "first boot: installing GRUB in the guest ($qemu_accel, timeout ${first_boot_timeout} s)"
timeout "$first_boot_timeout" qemu-system-x86_64 -accel "$qemu_accel" -cpu "$qemu_cpu" -smp 2 -m 1024 -no-reboot -display none \
    -drive "file=$workdir/disk.raw,format=raw,if=virtio" \
    -netdev user,id=net0 -device virtio-net-pci,netdev=net0 \
    -kernel "$workdir/vmlinuz-$boot_kernel" -initrd "$workdir/initrd.img-$boot_kernel" \
    -append "root=/dev/vda1 rw quiet" || true
loop="$(losetup -f --show -o $((2048 * 512)) "$workdir/disk.raw")"
mount "$loop" "$root"
if [[ ! -f "$root/var/lib/mlinfra-install-grub.done" ]]; then
    echo "error: installing GRUB in the guest failed or timed out after ${first_boot_timeout} s" >&2
    exit 1
fi
umount "$root"
losetup -d "$loop"
loop=""

mkdir -p "$cache_dir"
qemu-img convert -O qcow2 "$workdir/disk.raw" "$workdir/$name.qcow2"
install -m 0600 "$workdir/key" "$cache_dir/$name.key"
mv "$workdir/$name.qcow2" "$cache_dir/$name.qcow2"
printf '{"boot_kernel": "%s", "newer_kernel": "%s"}\n' "$boot_kernel" "$newer_kernel" >"$cache_dir/$name.json.tmp"
mv "$cache_dir/$name.json.tmp" "$cache_dir/$name.json"
log "done"
echo "$cache_dir/$name.json"
