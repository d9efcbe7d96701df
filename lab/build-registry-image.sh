#!/usr/bin/env bash
# Build the lab registry image and print its tag: the registry server (distribution 2.8) of Debian's
# docker-registry package, no debootstrap and no registry needed. The .deb's binary links only to libc, so
# the image holds that binary, the /lib* of Debian's libc6 and busybox-static (sh, wget: checks from inside).
# Config lab/registry-image/config.yml: listens on :5000, filesystem storage in /var/lib/registry (not a
# volume: it goes with the container), no auth, deletes enabled. Run it, e.g.:
#   docker run -d --name registry -p 127.0.0.1:5999:5000 TAG   # the engine pushes to 127.0.0.1 over http
# The tag is a hash of the recipe, so the image is rebuilt only when the recipe changes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
recipe_hash=$(cat "$0" "$here"/registry-image/* | sha256sum | cut -c1-12)
tag="swarmplane-lab-registry:${recipe_hash}"

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"
    exit 0
fi

work=$(mktemp -d /var/tmp/swarmplane-registry.XXXXXX)
trap 'rm -rf "$work"' EXIT
packages=(docker-registry libc6 busybox-static)
echo "==> apt-get download ${packages[*]}" >&2
(cd "$work" && { apt-get download "${packages[@]}" || { apt-get update -qq && apt-get download "${packages[@]}"; }; }) \
    >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; exit 1; }
for package in "${packages[@]}"; do
    dpkg-deb -x "$work/${package}"_*.deb "$work/$package"
done

root=$work/root
mkdir -p "$root/bin" "$root/usr/bin" "$root/etc/docker/registry" "$root/var/lib/registry" "$root/tmp"
chmod 0755 "$root" && chmod 1777 "$root/tmp"
cp -a "$work"/libc6/lib* "$root/"
install -m 0755 "$work/docker-registry/usr/bin/docker-registry" "$root/usr/bin/docker-registry"
install -m 0755 "$work/busybox-static/bin/busybox" "$root/bin/busybox"
grep -Ev '^(#|$)' "$here/registry-image/applets" | while read -r applet; do
    ln -s busybox "$root/bin/$applet"
done
install -m 0644 "$here/registry-image/config.yml" "$root/etc/docker/registry/config.yml"
tar -C "$root" -c --owner=0 --group=0 . | docker import \
    --change 'CMD ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]' \
    --change 'ENV PATH=/usr/bin:/bin' \
    --change 'EXPOSE 5000' \
    - "$tag" >/dev/null
echo "==> built $tag" >&2
echo "$tag"
