#!/usr/bin/env bash
# ansible-test sanity on the collection as `ansible-galaxy collection build` ships it, unpacked under
# ansible_collections/swarmplane/cluster/ in a temporary directory (removed afterwards), in ansible-test's own
# virtual environments for Python 3.11. Works offline from the ansible-test CI file server: when no get-pip
# bootstrap script is cached, scripts/get-pip-offline.py stands in for it. Arguments go to `ansible-test sanity`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d /tmp/swarmplane-sanity.XXXXXX)
trap 'rm -rf "$work"' EXIT

pip_version=$(python3 - <<'PY'
import re, pathlib, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", source.read_text()).group(1))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -s "$cache" ]; then
    mkdir -p "$(dirname "$cache")"
    cp "$repo/scripts/get-pip-offline.py" "$cache"
    echo "==> no cached get-pip $pip_version: using scripts/get-pip-offline.py ($cache)"
fi

ansible-galaxy collection build --output-path "$work" . >/dev/null
collection="$work/ansible_collections/swarmplane/cluster"
mkdir -p "$collection"
tar xzf "$work"/swarmplane-cluster-*.tar.gz -C "$collection"
cd "$collection"
# ansible-test lists a collection's files with git; its own output (and virtual environments) stay out.
printf 'tests/output/\n' >.gitignore
git init -q && git add -A && git -c user.name=sanity -c user.email=sanity@localhost commit -qm "as built"
ansible-test sanity --venv --python 3.11 --color no "$@"
