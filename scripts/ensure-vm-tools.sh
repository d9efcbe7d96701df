#!/usr/bin/env bash
# Make sure the VM lab's tools are installed (lab/build-vm-image.sh, lab/vm.py): qemu, qemu-img,
# debootstrap, mkfs.ext4, plus ip and ssh. Installs the missing Debian packages; silent when none is.
set -euo pipefail

packages=(qemu-system-x86 qemu-utils debootstrap e2fsprogs iproute2 openssh-client)

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for package in "${packages[@]}"; do
    installed "$package" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "==> installing the VM lab's tools from Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
