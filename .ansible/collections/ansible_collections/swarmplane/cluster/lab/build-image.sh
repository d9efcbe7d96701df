#!/usr/bin/env bash
# Build the lab host image from Debian packages (debootstrap; no registry is needed) and print its tag.
# The tag is a hash of the recipe, so the image is rebuilt only when the recipe changes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
suite=${LAB_DEBIAN_SUITE:-bookworm}
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
recipe_hash=$(cat "$0" "$here"/host-image/* | sha256sum | cut -c1-12)
tag="swarmplane-lab-host:${suite}-${recipe_hash}"

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"
    exit 0
fi

command -v debootstrap >/dev/null 2>&1 || {
    echo "==> installing debootstrap" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

root=$(mktemp -d /var/tmp/swarmplane-image.XXXXXX)
trap 'rm -rf "$root"' EXIT
packages=$(grep -v '^#' "$here/host-image/packages" | paste -sd, -)
echo "==> debootstrap $suite with: $packages (2-3 min, once per recipe)" >&2
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    exit 1
}
rm -f "$root.log"
install -m 0755 "$here/host-image/lab-init" "$root/usr/local/sbin/lab-init"
# Containers have no init system: keep package scripts from trying to start services.
rm -f "$root"/etc/ssh/ssh_host_*
rm -rf "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import \
    --change 'CMD ["/usr/local/sbin/lab-init"]' \
    --change 'ENV LANG=C.UTF-8' \
    - "$tag" >/dev/null
echo "==> built $tag" >&2
echo "$tag"
