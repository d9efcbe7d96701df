#!/usr/bin/env bash
# Build the lab web image from Debian's busybox-static (no registry is needed) and print its tag.
# A container answers GET / on port ${PORT:-8000} with "<container hostname> <variant>".
#
#   lab/build-web-image.sh [--variant NAME] [--broken]
#     --variant NAME  text baked into the reply and the tag (default v1); v1 and v2 give two images
#                     for rolling-update tests
#     --broken        the entry point exits 1 at once (for rollback tests)
#
# Tag: swarmplane-lab-web:<variant>[-broken]-<hash>, the hash covering this script and lab/web-image/,
# so an image is rebuilt only when the recipe changes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
variant=v1
broken=
while [ $# -gt 0 ]; do
    case $1 in
        --variant) variant=${2:?--variant needs a NAME}; shift 2 ;;
        --broken) broken=-broken; shift ;;
        *) echo "usage: $0 [--variant NAME] [--broken]" >&2; exit 2 ;;
    esac
done
[[ $variant =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || {
    echo "--variant: use letters, digits, '_', '.', '-' (got '$variant')" >&2
    exit 2
}
recipe_hash=$(cat "$0" "$here"/web-image/* | sha256sum | cut -c1-12)
tag="swarmplane-lab-web:${variant}${broken}-${recipe_hash}"

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"
    exit 0
fi

work=$(mktemp -d /var/tmp/swarmplane-web.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "==> apt-get download busybox-static" >&2
(cd "$work" && { apt-get download busybox-static || { apt-get update -qq && apt-get download busybox-static; }; }) \
    >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; exit 1; }
dpkg-deb -x "$work"/busybox-static_*.deb "$work/deb"

root=$work/root
mkdir -p "$root/bin" "$root/etc" "$root/www" "$root/tmp"
chmod 0755 "$root" && chmod 1777 "$root/tmp"
install -m 0755 "$work/deb/bin/busybox" "$root/bin/busybox"
grep -Ev '^(#|$)' "$here/web-image/applets" | while read -r applet; do
    ln -s busybox "$root/bin/$applet"
done
echo "$variant" >"$root/etc/lab-web-variant"
install -m 0755 "$here/web-image/entrypoint${broken}" "$root/entrypoint"
tar -C "$root" -c --owner=0 --group=0 . | docker import \
    --change 'CMD ["/entrypoint"]' \
    --change 'ENV PATH=/bin' \
    --change 'EXPOSE 8000' \
    - "$tag" >/dev/null
echo "==> built $tag" >&2
echo "$tag"
