"""`lab/lab.py up` reuses a lab's containers only when they authorize this checkout's SSH key: a lab of the same
name left by another clone of the repository (its own .lab/ssh key) is recreated, not handed to Ansible to be
refused with "Permission denied (publickey)".

Its own lab (`reusetest`, 1 manager), made first from a copy of lab/ elsewhere: that copy's .lab is its own."""

import shutil
import subprocess

from conftest import REPO, run_adhoc

LAB = "reusetest"


def lab_py(repo, *args):
    return subprocess.run(
        [str(repo / "lab" / "lab.py"), *args, "--name", LAB], text=True, capture_output=True, check=False
    )


def container_id():
    return subprocess.check_output(
        ["docker", "ps", "-aq", "--filter", "name=^swarmplane-%s-manager-1$" % LAB], text=True
    ).strip()


def test_a_lab_made_by_another_clone_is_recreated_with_this_clones_key(tmp_path):
    other = tmp_path / "other-clone"
    shutil.copytree(REPO / "lab", other / "lab", ignore=shutil.ignore_patterns("__pycache__"))
    image = subprocess.check_output([str(REPO / "lab" / "build-image.sh")], text=True).strip().splitlines()[-1]
    size = ["--managers", "1", "--workers", "0", "--image", image]
    try:
        made = lab_py(other, "up", *size, "--inventory", str(tmp_path / "other.yml"))
        assert made.returncode == 0, made.stdout + made.stderr
        first = container_id()

        inventory = tmp_path / "hosts.yml"
        again = lab_py(REPO, "up", *size, "--inventory", str(inventory))
        assert again.returncode == 0, again.stdout + again.stderr
        assert "recreating swarmplane-%s-manager-1: it authorizes another SSH key" % LAB in again.stdout
        assert container_id() != first
        assert (other / ".lab" / "ssh" / "id_ed25519").read_text() != (REPO / ".lab" / "ssh" / "id_ed25519").read_text()
        reached = run_adhoc(inventory, "manager-1", "ansible.builtin.command", "hostname")
        assert reached.returncode == 0 and "manager-1" in reached.stdout, reached.stdout + reached.stderr

        # With this clone's key in place, the next `up` keeps the container.
        kept = container_id()
        third = lab_py(REPO, "up", *size, "--inventory", str(inventory))
        assert third.returncode == 0 and "recreating" not in third.stdout, third.stdout + third.stderr
        assert container_id() == kept
    finally:
        lab_py(REPO, "down")
