#!/usr/bin/env bash
# Create .venv with the pinned controller and development packages; recreate it only when a requirements file
# changes.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "==> creating .venv from requirements-dev.txt (requirements.txt and the development tools)"
rm -rf .venv
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt 2> >(grep -v "is ignored: it is neither" >&2)
echo "$want" >"$stamp"
