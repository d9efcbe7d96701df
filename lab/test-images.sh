#!/usr/bin/env bash
# Self-check of the lab images: builds the web (v1, v2, --broken) and registry images, runs them on a
# private network, checks the web replies, pushes an image to the registry through the engine and pulls
# it back. Containers, network and tags it creates carry the run id and are removed on exit, even on
# failure; the built images stay (they are the cache). Traffic: loopback and these containers only.
# TEST_REGISTRY_PORT (default 5999): the 127.0.0.1 port the registry is published on.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
run=swarmplane-imgtest-$$
label=swarmplane.lab-test=$run
port=${TEST_REGISTRY_PORT:-5999}
pushed=127.0.0.1:$port/swarmplane-lab-web:roundtrip-$$

cleanup() {
    docker ps -aq --filter "label=$label" | xargs -r docker rm -fv >/dev/null
    docker network rm "$run" >/dev/null 2>&1 || true
    docker rmi "$pushed" >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

web_v1=$("$here/build-web-image.sh")
web_v2=$("$here/build-web-image.sh" --variant v2)
web_broken=$("$here/build-web-image.sh" --broken)
registry=$("$here/build-registry-image.sh")
ok "built $web_v1 $web_v2 $web_broken $registry"

docker network create --label "$label" "$run" >/dev/null
start() { # NAME IMAGE [docker run flags...]: a detached container on the test network
    docker run -d --label "$label" --network "$run" --name "$run-$1" "${@:3}" "$2" >/dev/null
}
fetch() { # URL: body of a GET from a client container on the test network, retried while the server starts
    docker run --rm --label "$label" --network "$run" "$web_v1" sh -c \
        'for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- "$0" 2>/dev/null && exit 0; sleep 0.5; done; exit 1' "$1"
}
start web-v1 "$web_v1"
start web-v2 "$web_v2"
start registry "$registry" -p "127.0.0.1:$port:5000"

for variant in v1 v2; do
    name=$run-web-$variant
    want="$(docker inspect -f '{{.Config.Hostname}}' "$name") $variant"
    got=$(fetch "http://$name:8000/") || fail "no reply from $name"
    [ "$got" = "$want" ] || fail "$name replied '$got', expected '$want'"
    ok "$name replies '$got'"
done

rc=0
docker run --rm --label "$label" "$web_broken" >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "$web_broken exited $rc, expected 1"
ok "$web_broken exits 1"

got=$(fetch "http://$run-registry:5000/v2/") || fail "registry does not answer"
[ "$got" = "{}" ] || fail "registry /v2/ replied '$got'"
ok "registry answers /v2/ on the network"

# Round trip through the engine: an image with a layer of its own, so the pull really transfers blobs.
docker run --label "$label" --name "$run-roundtrip" "$web_v2" sh -c "echo $run >/www/marker"
id=$(docker commit --change 'CMD ["/entrypoint"]' "$run-roundtrip" "$pushed")
docker push "$pushed" >/dev/null || fail "docker push $pushed"
ok "pushed $pushed"
catalog=$(fetch "http://$run-registry:5000/v2/_catalog")
[[ $catalog == *'"swarmplane-lab-web"'* ]] || fail "catalog is '$catalog'"
digest=$(docker inspect -f '{{index .RepoDigests 0}}' "$pushed")
docker rmi "$pushed" >/dev/null
! docker image inspect "$pushed" >/dev/null 2>&1 || fail "$pushed still present after docker rmi"
docker pull "$pushed" >/dev/null || fail "docker pull $pushed"
[ "$(docker image inspect -f '{{.Id}}' "$pushed")" = "$id" ] || fail "pulled image differs from the pushed one"
got=$(docker run --rm --label "$label" "$pushed" cat /www/marker)
[ "$got" = "$run" ] || fail "pulled image holds '$got', expected '$run'"
ok "pulled $pushed back after docker rmi (same image id, layer content intact)"

if command -v curl >/dev/null 2>&1; then
    status=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE \
        "http://127.0.0.1:$port/v2/swarmplane-lab-web/manifests/${digest#*@}")
    [ "$status" = 202 ] || fail "DELETE of the manifest answered $status, expected 202"
    ok "registry deletes manifests"
else
    echo "skip - DELETE of a manifest (no curl)"
fi
echo "PASS"
