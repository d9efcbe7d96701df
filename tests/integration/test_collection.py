"""The collection as users install it: `ansible-galaxy collection build` ships the collection only, the tarball
installs offline, and ansible-doc finds every module and plugin in the installed copy."""

import os
import re
import shutil
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


def tool(name):
    """The project's virtualenv copy of a tool, else the one on PATH."""
    return str(BIN / name) if (BIN / name).exists() else shutil.which(name) or name


def run(*argv, cwd=REPO, env=None):
    done = subprocess.run(
        [tool(argv[0]), *argv[1:]], cwd=cwd, env=env or os.environ, text=True, capture_output=True, timeout=300
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
    for pattern in ("__pycache__", ".pyc", "Makefile", "ansible.cfg", ".tar.gz"):
        assert not [n for n in names if pattern in n], pattern
    assert not {"requirements.txt", "requirements-dev.txt", "requirements.yml"} & set(names)  # the project's pins
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
    # The collection's playbooks, by FQCN, from the installed copy (syntax: no host is contacted).
    for playbook in sorted(p.stem for p in (REPO / "playbooks").glob("*.yml")):
        run(
            "ansible-playbook",
            "--syntax-check",
            "-i",
            str(REPO / "inventories" / "sample"),
            "swarmplane.cluster.%s" % playbook,
            cwd=tmp_path,
            env=env,
        )
    assert "swarmplane.cluster.swarm" in run(
        "ansible-doc", "-t", "inventory", "-l", "swarmplane.cluster", cwd=tmp_path, env=env
    )


def test_the_execution_environment_context_holds_the_collection_and_only_what_it_needs(tarball, tmp_path):
    # As `make ee-context` does, in a directory of its own: the tarball under the name the definition expects.
    (tmp_path / "dist").mkdir()
    shutil.copy(tarball, tmp_path / "dist" / "swarmplane-cluster.tar.gz")
    shutil.copy(REPO / "execution-environment.yml", tmp_path)
    run("ansible-builder", "create", "-f", "execution-environment.yml", "-c", "context", cwd=tmp_path)
    context = tmp_path / "context"
    containerfile = next(p for p in (context / "Containerfile", context / "Dockerfile") if p.exists()).read_text()
    pins = dict(line.split("==") for line in (REPO / "requirements.txt").read_text().splitlines() if "==" in line)
    refs = re.search(r'ARG ANSIBLE_INSTALL_REFS="([^"]+)"', containerfile).group(1).split()
    assert sorted(refs) == sorted("%s==%s" % (name, pins[name]) for name in ("ansible-core", "ansible-runner"))
    assert (context / "_build" / "collections" / "swarmplane-cluster.tar.gz").exists()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert galaxy["collections"] == [{"name": "/build/collections/swarmplane-cluster.tar.gz", "type": "file"}]
    # What the image's build asks of the collection (ansible-builder's own introspection, on the installed copy):
    # no Python package beyond ansible-core, ssh for the inventory plugin; none of the development pins.
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n")
    installed = tmp_path / "collections"
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_COLLECTIONS_PATH=str(installed))
    run(
        "ansible-galaxy",
        "collection",
        "install",
        "--offline",
        "-p",
        str(installed),
        str(tarball),
        cwd=tmp_path,
        env=env,
    )
    found = yaml.safe_load(
        run(sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect", str(installed))
    )
    assert found["python"] == []
    assert [line.split("#")[0].strip() for line in found["system"]] == [
        "openssh-clients [platform:rpm]",
        "openssh-client [platform:dpkg]",
    ]
    # The context's own dependency files and build file (not ansible-builder's scripts) name no development tool.
    declared = [
        p
        for p in context.rglob("*")
        if p.suffix in (".txt", ".yml", ".yaml") or p.name in ("Containerfile", "Dockerfile")
    ]
    for dev_only in ("ruff", "pytest", "molecule", "black", "ansible-lint"):
        assert not [p for p in declared if dev_only in p.read_text()], dev_only


def test_the_changelog_is_valid_and_covers_the_version_galaxy_builds():
    run("antsibull-changelog", "lint-changelog-yaml", "changelogs/changelog.yaml")
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert version in yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text())["releases"]


# Where AWX's project sync looks for Galaxy requirements (awx/playbooks/project_update.yml).
AWX_REQUIREMENTS = ("roles/requirements.yml", "collections/requirements.yml", "requirements.yml")


def used_collections():
    """Every collection named by an FQCN module or role in the project's playbooks and roles."""
    used = set()
    pattern = re.compile(r"^\s*-?\s*(?:ansible\.builtin|([a-z0-9_]+\.[a-z0-9_]+))\.[a-z0-9_]+:", re.M)
    tasks = [p for p in (REPO / "roles").rglob("*.yml") if p.parent.name in ("tasks", "handlers")]
    for path in [*REPO.glob("*.yml"), *(REPO / "playbooks").rglob("*.yml"), *tasks]:
        used |= {m.group(1) for m in pattern.finditer(path.read_text()) if m.group(1)}
    return used


def test_awx_project_sync_finds_every_collection_the_project_uses_beyond_itself(tmp_path):
    listed = set()
    for name in AWX_REQUIREMENTS:
        path = REPO / name
        if path.exists():
            data = yaml.safe_load(path.read_text()) or {}
            listed |= {c["name"] if isinstance(c, dict) else c for c in data.get("collections") or []}
    assert used_collections() - {"swarmplane.cluster"} <= listed
    assert "swarmplane.cluster" in used_collections()  # the scan sees the FQCNs
    # The same commands the sync runs, offline: nothing to install, nothing failing.
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(config))
    for name in AWX_REQUIREMENTS:
        if (REPO / name).exists():
            kind = "role" if name.startswith("roles/") else "collection"
            run(
                "ansible-galaxy",
                kind,
                "install",
                "--offline" if kind == "collection" else "-v",
                "-r",
                str(REPO / name),
                "-p",
                str(tmp_path / "installed"),
                cwd=tmp_path,
                env=env,
            )
