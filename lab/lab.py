#!/usr/bin/env python3
"""Local lab of swarm hosts: containers that each run their own sshd (and, once swarmplane has
prepared them, their own dockerd), reached over SSH exactly like real hosts.

    lab/lab.py up   --name lab --managers 1 --workers 2 --inventory inventories/lab/hosts.yml [--registry]
    lab/lab.py down --name lab

--registry (or LAB_REGISTRY=1) adds the lab's image registry: a container the lab hosts' engines pull from
as lab-registry:5000, holding the web images swarmplane/web:v1, :v2 and :broken (see docs/lab.md).

Only the Python standard library and the docker CLI are used, so it runs before the virtualenv exists.
Every container and network it makes carries the label swarmplane.lab=NAME; `down` removes exactly those.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE_DIR = REPO / ".lab"
KEY = STATE_DIR / "ssh" / "id_ed25519"
LABEL = "swarmplane.lab"

# The registry is published on 127.0.0.1 only, where this machine's engine pushes to it over plain HTTP
# (the engine treats 127.0.0.0/8 as insecure). The lab hosts reach it on the lab network by its alias.
REGISTRY_ALIAS = "lab-registry"
REGISTRY = "%s:5000" % REGISTRY_ALIAS
WEB_REPOSITORY = "swarmplane/web"
WEB_IMAGES = {"v1": [], "v2": ["--variant", "v2"], "broken": ["--broken"]}  # tag -> build-web-image.sh flags

# --privileged fails on this kind of machine (CAP_SYS_RESOURCE is not in the bounding set);
# these flags run a working dockerd inside the container (see docs/lab.md).
HOST_FLAGS = [
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--cgroupns",
    "host",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "-v",
    "/var/lib/docker",  # anonymous volume: keeps the inner overlay2 off the outer overlayfs
]


def docker(*args, check=True, capture=True):
    result = subprocess.run(["docker", *args], text=True, capture_output=capture)
    if check and result.returncode != 0:
        sys.exit("docker %s failed: %s" % (" ".join(args[:2]), (result.stderr or "").strip()))
    return (result.stdout or "").strip()


def ensure_key():
    if not KEY.exists():
        KEY.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "swarmplane-lab", "-f", str(KEY)], check=True
        )
    return KEY.with_suffix(".pub").read_text().strip()


def build(script, *args):
    """Run one of the lab/build-*.sh scripts (cached by recipe hash) and return the image tag it prints."""
    out = subprocess.run([str(REPO / "lab" / script), *args], check=True, text=True, stdout=subprocess.PIPE)
    return out.stdout.strip().splitlines()[-1]


def lab_containers(name):
    out = docker("ps", "-a", "--filter", "label=%s=%s" % (LABEL, name), "--format", "{{.Names}}")
    return [line for line in out.splitlines() if line]


def container_state(container):
    """(state, image, the SSH key it authorizes or None) of an existing container, or None."""
    out = docker("ps", "-a", "--filter", "name=^%s$" % container, "--format", "{{.State}} {{.Image}}")
    if not out:
        return None
    env = json.loads(docker("inspect", "--format", "{{json .Config.Env}}", container)) or []
    key = next((e.split("=", 1)[1] for e in env if e.startswith("LAB_AUTHORIZED_KEY=")), None)
    return (*out.split(), key)


def container_ip(container, network):
    data = json.loads(docker("inspect", container))[0]
    return data["NetworkSettings"]["Networks"][network]["IPAddress"]


def wait_for_ssh(addresses, timeout=60):
    deadline = time.monotonic() + timeout
    pending = set(addresses)
    while pending and time.monotonic() < deadline:
        for addr in list(pending):
            try:
                with socket.create_connection((addr, 22), timeout=1) as sock:
                    if sock.recv(4).startswith(b"SSH"):
                        pending.discard(addr)
            except OSError:
                pass
        if pending:
            time.sleep(0.3)
    if pending:
        sys.exit("lab hosts did not answer SSH within %d s: %s" % (timeout, ", ".join(sorted(pending))))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_registry(name, network):
    """Start (or reuse) the lab's registry container; returns its port on 127.0.0.1."""
    image = build("build-registry-image.sh")
    container = "swarmplane-%s-registry" % name
    state = container_state(container)
    if state and state[1] != image:
        print("==> recreating %s: its image is not %s" % (container, image))
        docker("rm", "-fv", container)
        state = None
    if not state:
        docker(
            "run",
            "-d",
            "--name",
            container,
            "--label",
            "%s=%s" % (LABEL, name),
            "--network",
            network,
            "--network-alias",
            REGISTRY_ALIAS,
            "-p",
            "127.0.0.1:%d:5000" % free_port(),
            image,
        )
    elif state[0] != "running":
        docker("start", container)
    # "127.0.0.1:PORT": the port the container was published on, kept when it is reused.
    return int(docker("port", container, "5000/tcp").splitlines()[0].rsplit(":", 1)[1])


def wait_for_registry(port, timeout=30):
    url = "http://127.0.0.1:%d/v2/" % port
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                sys.exit("the lab registry did not answer %s within %d s" % (url, timeout))
            time.sleep(0.3)


def push_web_images(port):
    """Push the web images through this machine's engine; the temporary 127.0.0.1 tags are removed."""
    wait_for_registry(port)
    for tag, flags in WEB_IMAGES.items():
        target = "127.0.0.1:%d/%s:%s" % (port, WEB_REPOSITORY, tag)
        docker("tag", build("build-web-image.sh", *flags), target)
        try:
            docker("push", "--quiet", target)
        finally:
            docker("rmi", target, check=False)


def host_names(managers, workers):
    return ["manager-%d" % i for i in range(1, managers + 1)], ["worker-%d" % i for i in range(1, workers + 1)]


def inventory_yaml(managers, workers, addresses, registry):
    """The lab inventory, in the same shape as inventories/sample/hosts.yml."""
    lines = ["---", "# Written by lab/lab.py: the lab's container hosts. Regenerated by `make lab`.", "all:", "  vars:"]
    lines += [
        "    ansible_user: root",
        "    ansible_ssh_private_key_file: %s" % KEY,
        "    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
    ]
    if registry:
        lines += [
            "    # The lab registry, holding %s:%s (plain HTTP: insecure-registries)"
            % (WEB_REPOSITORY, ", ".join(WEB_IMAGES)),
            "    lab_registry: %s" % REGISTRY,
            "    docker_engine_daemon_options: %s" % json.dumps({"insecure-registries": [REGISTRY]}),
        ]
    lines += [
        "  children:",
        "    swarm:",
        "      children:",
    ]
    for group, hosts in (("managers", managers), ("workers", workers)):
        lines.append("        %s:" % group)
        lines.append("          hosts:" if hosts else "          hosts: {}")
        for host in hosts:
            lines.append("            %s:" % host)
            lines.append("              ansible_host: %s" % addresses[host])
    return "\n".join(lines) + "\n"


def up(args):
    pubkey = ensure_key()
    image = args.image or build("build-image.sh")
    network = "swarmplane-%s" % args.name
    if not docker("network", "ls", "-q", "--filter", "name=^%s$" % network):
        docker("network", "create", "--label", "%s=%s" % (LABEL, args.name), network)
    managers, workers = host_names(args.managers, args.workers)
    wanted = {"swarmplane-%s-%s" % (args.name, h): h for h in managers + workers}
    registry = "swarmplane-%s-registry" % args.name if args.registry else None
    for container in lab_containers(args.name):
        if container not in wanted and container != registry:
            print("==> removing %s (not in the requested lab)" % container)
            docker("rm", "-fv", container)
    port = start_registry(args.name, network) if registry else None
    addresses = {}
    for container, host in wanted.items():
        existing = container_state(container)
        if existing and existing[1] != image:
            print("==> recreating %s: its image is not %s" % (container, image))
            docker("rm", "-fv", container)
            existing = None
        elif existing and existing[2] != pubkey:
            # Another checkout's lab of the same name: its hosts would refuse this checkout's key.
            print("==> recreating %s: it authorizes another SSH key than %s" % (container, KEY))
            docker("rm", "-fv", container)
            existing = None
        if not existing:
            docker(
                "run",
                "-d",
                "--name",
                container,
                "--hostname",
                host,
                "--label",
                "%s=%s" % (LABEL, args.name),
                "--network",
                network,
                "-e",
                "LAB_AUTHORIZED_KEY=%s" % pubkey,
                *HOST_FLAGS,
                image,
            )
        elif existing[0] != "running":
            docker("start", container)
        addresses[host] = container_ip(container, network)
    if registry:
        push_web_images(port)  # while the hosts' sshd starts
    wait_for_ssh(addresses.values())
    inventory = Path(args.inventory)
    inventory.parent.mkdir(parents=True, exist_ok=True)
    inventory.write_text(inventory_yaml(managers, workers, addresses, registry=bool(registry)))
    if args.instance_config:
        # Molecule's delegated driver reads this list to connect (JSON is valid YAML).
        instances = [
            dict(instance=h, address=addresses[h], user="root", port=22, identity_file=str(KEY))
            for h in managers + workers
        ]
        Path(args.instance_config).write_text(json.dumps(instances, indent=1) + "\n")
    print(
        "==> lab '%s': %d manager(s), %d worker(s); inventory %s" % (args.name, len(managers), len(workers), inventory)
    )
    if registry:
        print(
            "==> registry %s: %s on the lab hosts, 127.0.0.1:%d here; pushed %s:%s"
            % (registry, REGISTRY, port, WEB_REPOSITORY, ", ".join(WEB_IMAGES))
        )


def down(args):
    containers = lab_containers(args.name)
    if containers:
        docker("rm", "-fv", *containers)
    for network in docker("network", "ls", "-q", "--filter", "label=%s=%s" % (LABEL, args.name)).split():
        docker("network", "rm", network, check=False)
    print("==> lab '%s' removed (%d container(s))" % (args.name, len(containers)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="create or reuse the lab hosts and write their inventory")
    p_up.add_argument("--name", default="lab")
    p_up.add_argument("--managers", type=int, default=int(os.environ.get("LAB_MANAGERS", 1)))
    p_up.add_argument("--workers", type=int, default=int(os.environ.get("LAB_WORKERS", 2)))
    p_up.add_argument("--inventory", default=str(REPO / "inventories" / "lab" / "hosts.yml"))
    p_up.add_argument("--image", help="use this image instead of building lab/host-image")
    p_up.add_argument("--instance-config", help="also write the hosts as a Molecule instance config")
    p_up.add_argument(
        "--registry",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("LAB_REGISTRY", "").lower() in ("1", "true", "yes"),
        help="add the lab registry (lab-registry:5000) holding the web images (default: LAB_REGISTRY=1)",
    )
    p_up.set_defaults(func=up)
    p_down = sub.add_parser("down", help="remove the lab's containers (hosts and registry) and network")
    p_down.add_argument("--name", default="lab")
    p_down.set_defaults(func=down)
    args = parser.parse_args()
    if args.command == "up" and args.managers < 1:
        parser.error("--managers must be at least 1 (LAB_MANAGERS)")
    args.func(args)


if __name__ == "__main__":
    main()
