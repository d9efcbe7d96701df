"""The collection as users install it: `ansible-galaxy collection build` ships the collection only, the tarball
installs offline, and ansible-doc finds every module and plugin in the installed copy."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# What the tarball may hold at its top level, and what it must hold.
SHIPPED = {
    "CHANGELOG.md",
    "FILES.json",
    "LICENSE",
    "MANIFEST.json",
    "README.md",
    "changelogs",
    "docs",
    "meta",
    "playbooks",
    "plugins",
    "roles",
    "tests",
}
NEVER = (
    "lab/",
    "bench/",
    "molecule/",
    "scripts/",
    ".ci/",
    ".ansible",
    "inventories/",
    "tests/integration",
    "tests/unit",
)


def run(*argv, cwd=REPO, env=None):
    done = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]], cwd=cwd, env=env or os.environ, text=True, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    run("ansible-galaxy", "collection", "build", "--output-path", str(out), ".")
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    path = out / ("swarmplane-cluster-%s.tar.gz" % version)
    assert path.exists()
    return path


def members(path):
    with tarfile.open(path) as archive:
        return [m.name for m in archive.getmembers()]


def test_the_tarball_holds_the_collection_only(tarball):
    names = members(tarball)
    assert {n.split("/")[0] for n in names} <= SHIPPED
    for prefix in NEVER:
        assert not [n for n in names if n.startswith(prefix)], prefix
    for pattern in ("__pycache__", ".pyc", "requirements.txt", "Makefile", "ansible.cfg", ".tar.gz"):
        assert not [n for n in names if pattern in n], pattern
    # The entry playbooks of the project stay out; the collection's own playbooks go in.
    assert "cluster.yml" not in names and "playbooks/cluster.yml" in names
    for needed in (
        "LICENSE",
        "meta/runtime.yml",
        "plugins/modules/swarm_services.py",
        "roles/swarm/meta/argument_specs.yml",
    ):
        assert needed in names, needed


def test_the_tarball_installs_offline_and_ansible_doc_finds_every_module(tarball, tmp_path):
    # Away from the repository, whose ansible.cfg finds the collection in place (it would be "already installed").
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path), ANSIBLE_CONFIG=str(config))
    run(
        "ansible-galaxy", "collection", "install", "--offline", "-p", str(tmp_path), str(tarball), cwd=tmp_path, env=env
    )
    installed = tmp_path / "ansible_collections" / "swarmplane" / "cluster"
    assert (installed / "MANIFEST.json").exists()
    listed = run("ansible-doc", "-t", "module", "-l", "swarmplane.cluster", cwd=tmp_path, env=env)
    modules = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    assert sorted(line.split()[0].split(".")[-1] for line in listed.splitlines() if line.strip()) == modules
    assert "swarmplane.cluster.swarm" in run(
        "ansible-doc", "-t", "inventory", "-l", "swarmplane.cluster", cwd=tmp_path, env=env
    )
