#!/usr/bin/env bash
# Build the VM lab image from Debian packages and print its directory (the last line of stdout):
#
#   ${SWARMPLANE_CACHE:-/var/cache/swarmplane}/vm-image/bookworm-<hash>/{vmlinuz,initrd.img,base.qcow2}
#
# debootstrap of Debian 12 with the packages of lab/vm-image/packages (Debian's cloud kernel, systemd,
# sshd, the engine), configured as a lab VM (see lab/vm-image/ and docs/lab.md), written to an ext4
# file system (mkfs.ext4 -d) and converted to a sparse qcow2 that lab/vm.py uses as a backing file.
# The hash covers this script and lab/vm-image/: the image is rebuilt only when its recipe changes.
# The build happens in a temporary directory renamed into place at the end, so an interrupted build
# leaves no half image; older bookworm-* builds are removed after a successful one.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
disk_size=${VM_DISK_SIZE:-6G}
cache=${SWARMPLANE_CACHE:-/var/cache/swarmplane}/vm-image
recipe_hash=$(for f in "$0" "$here"/vm-image/*; do echo "== ${f##*/}"; cat "$f"; done | sha256sum | cut -c1-12)
image=$cache/$suite-$recipe_hash
work=

log() { echo "==> $*" >&2; }

complete() { [ -s "$1/vmlinuz" ] && [ -s "$1/initrd.img" ] && [ -s "$1/base.qcow2" ]; }

# Unmount what debootstrap may have left mounted in the root (an interrupted build), then delete.
remove_work_dir() {
    local dir=$1 mounts
    mounts=$(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
    for mount in $mounts; do
        umount -l "$mount" || true
    done
    rm -rf --one-file-system "$dir"
}

cleanup() {
    if [ -n "$work" ] && [ -d "$work" ]; then
        remove_work_dir "$work"
    fi
}

bootstrap() {
    local root=$1 packages
    packages=$(grep -Ev '^(#|$)' "$here/vm-image/packages" | paste -sd, -)
    log "debootstrap $suite with: $packages (a few minutes, once per recipe)"
    debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
        tail -n 30 "$work/debootstrap.log" >&2
        exit 1
    }
}

enable_unit() {
    local root=$1 unit=$2 target=$3
    mkdir -p "$root/etc/systemd/system/$target.wants"
    ln -sf "/lib/systemd/system/$unit" "$root/etc/systemd/system/$target.wants/$unit"
}

configure_guest() {
    local root=$1 recipe=$here/vm-image unit
    # No way out: no default route (swarmplane-guest-setup sets the address only) and no resolver, so
    # the engine's registry lookups fail at once instead of leaving through this machine.
    echo "nameserver 127.0.0.1" >"$root/etc/resolv.conf"
    echo "/dev/vda / ext4 rw,noatime 0 0" >"$root/etc/fstab"
    echo "localhost" >"$root/etc/hostname"

    install -m 0755 "$recipe/swarmplane-guest-setup" "$root/usr/local/sbin/swarmplane-guest-setup"
    install -m 0644 "$recipe/swarmplane-guest.service" "$root/etc/systemd/system/swarmplane-guest.service"
    mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
    ln -sf /etc/systemd/system/swarmplane-guest.service \
        "$root/etc/systemd/system/multi-user.target.wants/swarmplane-guest.service"

    enable_unit "$root" ssh.service multi-user.target
    enable_unit "$root" containerd.service multi-user.target
    enable_unit "$root" docker.service multi-user.target
    enable_unit "$root" docker.socket sockets.target
    for unit in docker.service docker.socket containerd.service; do
        install -D -m 0644 "$recipe/engine-condition.conf" "$root/etc/systemd/system/$unit.d/swarmplane.conf"
    done
    grep -Ev '^(#|$)' "$recipe/masked-units" | while read -r unit; do
        ln -sf /dev/null "$root/etc/systemd/system/$unit"
    done

    install -m 0644 "$recipe/sshd.conf" "$root/etc/ssh/sshd_config.d/swarmplane.conf"
    rm -f "$root"/etc/ssh/ssh_host_*
    # Empty: systemd gives every VM its own machine-id at first boot.
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
}

make_image() {
    local root=$1 out=$2
    mkdir -p "$out"
    install -m 0644 "$root"/boot/vmlinuz-* "$out/vmlinuz"
    install -m 0644 "$root"/boot/initrd.img-* "$out/initrd.img"
    log "writing the root file system ($disk_size, ext4) and converting it to qcow2"
    truncate -s "$disk_size" "$work/root.img"
    mkfs.ext4 -q -L swarmplane-root -d "$root" "$work/root.img"
    qemu-img convert -O qcow2 "$work/root.img" "$out/base.qcow2"
    rm -f "$work/root.img"
}

remove_older_builds() {
    local dir
    for dir in "$cache/$suite"-*; do
        if [ -d "$dir" ] && [ "$dir" != "$image" ]; then
            log "removing the older build $dir"
            rm -rf --one-file-system "$dir"
        fi
    done
}

main() {
    if complete "$image"; then
        echo "$image"
        return 0
    fi
    mkdir -p "$cache"
    # One build at a time; under the lock, leftovers of a killed build can be removed.
    exec 9>"$cache/.lock"
    flock 9
    if complete "$image"; then
        echo "$image"
        return 0
    fi
    for stale in "$cache"/.build-*; do
        [ -d "$stale" ] && remove_work_dir "$stale"
    done

    local started=$SECONDS
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    work=$(mktemp -d "$cache/.build-XXXXXX")
    bootstrap "$work/root"
    configure_guest "$work/root"
    make_image "$work/root" "$work/out"
    rm -rf "$image"
    mv "$work/out" "$image"
    remove_older_builds
    log "built $image in $((SECONDS - started)) s"
    echo "$image"
}

main
