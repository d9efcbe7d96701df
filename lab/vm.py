#!/usr/bin/env python3
"""Lab of qemu VMs booted with Debian's kernel: IPVS (the routing mesh), ESP (encrypted overlays) and
everything else this machine's kernel lacks, on hosts reached over SSH like real ones.

    lab/vm.py up     --name vm --managers 1 --workers 1 --loadbalancers 1 --inventory inventories/lab-vm/hosts.yml
    lab/vm.py status --name vm
    lab/vm.py down   --name vm     (or --all)

Layout (see docs/lab.md): the network namespace spvm-NAME holds a bridge, one tap per VM and one end of
a veth pair whose other end, spvm-NAME in this machine's namespace, has the subnet's first address:
Ansible reaches the VMs through it. The VMs have no route out. qemu runs in the namespace with software
emulation (KVM does not work on this kind of machine), boots the kernel of the image
lab/build-vm-image.sh caches, and writes to a qcow2 overlay of that image under .lab/vm/NAME/.

Only the Python standard library and the ip, ssh, qemu and docker commands are used, so it runs before the
virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lab import KEY, REPO, WEB_IMAGES, WEB_REPOSITORY, build, ensure_key

RUNTIME_ROOT = REPO / ".lab" / "vm"
PREFIX = "spvm-"  # netns and host veth: spvm-NAME, at most 15 characters (IFNAMSIZ)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,9}$")
BRIDGE = "br0"
UPLINK = "uplink"  # the veth end inside the namespace, on the bridge
FIRST_HOST = 11  # manager-1 gets .11, then the other managers, the workers, the load balancers
FIRST_VIP = 100  # lb-1's edge_lb_vip (the address clients connect to) is .100, lb-2's .101, ...
QEMU = "qemu-system-x86_64"
SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
ROLES = (("managers", "manager"), ("workers", "worker"), ("loadbalancers", "lb"))


class LabError(Exception):
    """A failure of `up`; `host` names the VM it concerns, if one."""

    def __init__(self, message, host=None):
        super().__init__(message)
        self.host = host


class Terminated(BaseException):
    """SIGTERM, turned into an exception so `up` cleans up as it does on Ctrl-C."""


@dataclass(frozen=True)
class VM:
    host: str
    group: str  # managers, workers or loadbalancers
    address: str
    prefix: int
    mac: str
    vip: str  # edge_lb_vip of a load balancer, else ""
    memory: int
    cpus: int
    image: str  # the cache directory of lab/build-vm-image.sh

    @property
    def engine(self):
        return self.group != "loadbalancers"

    @property
    def tap(self):
        return tap_name(self.host)


def tap_name(host):
    return "tap-%s" % host


class Lab:
    def __init__(self, name):
        self.name = name
        self.netns = PREFIX + name
        self.veth = PREFIX + name
        self.dir = RUNTIME_ROOT / name
        self.state_file = self.dir / "state.json"

    def path(self, host, suffix):
        return self.dir / ("%s.%s" % (host, suffix))

    def load_state(self):
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def save_state(self, state):
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1) + "\n")
        tmp.rename(self.state_file)


# --- commands --------------------------------------------------------------------------------------------


def run(*cmd, host=None):
    result = subprocess.run(list(cmd), text=True, capture_output=True)
    if result.returncode != 0:
        raise LabError("%s failed: %s" % (" ".join(cmd[:4]), (result.stderr or result.stdout).strip()), host)
    return result.stdout


def ip(*args, netns=None):
    return run("ip", *(["-n", netns] if netns else []), *args)


def netns_exists(netns):
    return Path("/run/netns", netns).exists()


def link_exists(name):
    return Path("/sys/class/net", name).exists()


def ssh_command(vm, *command):
    return [
        "ssh",
        "-i",
        str(KEY),
        *SSH_OPTIONS,
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "root@%s" % vm.address,
        *command,
    ]


# --- plan ------------------------------------------------------------------------------------------------


def plan(args, image):
    """The VMs the arguments ask for, in address order."""
    subnet = ipaddress.ip_network(args.subnet)
    counts = {"managers": args.managers, "workers": args.workers, "loadbalancers": args.loadbalancers}
    if FIRST_HOST + sum(counts.values()) > FIRST_VIP or FIRST_VIP + args.loadbalancers >= subnet.num_addresses - 1:
        raise LabError(
            "%d VMs do not fit in %s: hosts from .%d up to .%d, load balancer VIPs from .%d"
            % (sum(counts.values()), subnet, FIRST_HOST, FIRST_VIP - 1, FIRST_VIP)
        )
    vms = []
    for group, prefix in ROLES:
        for i in range(1, counts[group] + 1):
            host = "%s-%d" % (prefix, i)
            digest = hashlib.sha256(("%s/%s" % (args.name, host)).encode()).digest()
            address = subnet.network_address + FIRST_HOST + len(vms)
            mac = "52:54:00:%02x:%02x:%02x" % (digest[0], digest[1], int(address) & 0xFF)
            vip = str(subnet.network_address + FIRST_VIP + i - 1) if group == "loadbalancers" else ""
            vms.append(VM(host, group, str(address), subnet.prefixlen, mac, vip, args.memory, args.cpus, str(image)))
    return vms


def check_subnet(subnet, own_veth):
    """Refuse a subnet that overlaps an address or route of this machine (other than the lab's own veth)."""
    for link in json.loads(run("ip", "-j", "-4", "address", "show") or "[]"):
        if link["ifname"] == own_veth:
            continue
        for info in link.get("addr_info", []):
            network = ipaddress.ip_network("%s/%s" % (info["local"], info["prefixlen"]), strict=False)
            if network.overlaps(subnet):
                raise LabError(
                    "subnet %s overlaps %s/%s on %s of this machine. Fix: choose another one with --subnet."
                    % (subnet, info["local"], info["prefixlen"], link["ifname"])
                )
    for route in json.loads(run("ip", "-j", "-4", "route", "show") or "[]"):
        if route["dst"] == "default" or route.get("dev") == own_veth:
            continue
        network = ipaddress.ip_network(route["dst"], strict=False)
        if network.overlaps(subnet):
            raise LabError(
                "subnet %s overlaps the route to %s on this machine. Fix: choose another one with --subnet."
                % (subnet, route["dst"])
            )


# --- network ---------------------------------------------------------------------------------------------


def create_network(lab, subnet):
    """Namespace, bridge, and the veth pair from this machine into the bridge (the host end gets .1)."""
    gateway = "%s/%d" % (subnet.network_address + 1, subnet.prefixlen)
    run("ip", "netns", "add", lab.netns)
    ip("link", "set", "lo", "up", netns=lab.netns)
    ip("link", "add", BRIDGE, "type", "bridge", netns=lab.netns)
    ip("link", "set", BRIDGE, "up", netns=lab.netns)
    ip("link", "add", lab.veth, "type", "veth", "peer", "name", UPLINK, "netns", lab.netns)
    ip("link", "set", UPLINK, "master", BRIDGE, "up", netns=lab.netns)
    ip("address", "add", gateway, "dev", lab.veth)
    ip("link", "set", lab.veth, "up")


def ensure_tap(lab, vm):
    if not netns_exists(lab.netns):
        raise LabError("the namespace %s is gone" % lab.netns, vm.host)
    if subprocess.run(["ip", "-n", lab.netns, "link", "show", vm.tap], capture_output=True).returncode != 0:
        ip("tuntap", "add", "dev", vm.tap, "mode", "tap", netns=lab.netns)
    ip("link", "set", vm.tap, "master", BRIDGE, "up", netns=lab.netns)


# --- qemu processes --------------------------------------------------------------------------------------


def cmdline(pid):
    try:
        return Path("/proc/%d/cmdline" % pid).read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def is_lab_qemu(pid, lab, pidfile=None):
    """Whether PID is a qemu of this lab (and of the VM whose pidfile is given): never kill a stranger."""
    args = cmdline(pid)
    if not args or not os.path.basename(args[0]).startswith("qemu-system"):
        return False
    if pidfile is not None:
        return str(pidfile) in args
    return any(arg.startswith(str(lab.dir) + "/") or ("=%s/" % lab.dir) in arg for arg in args)


def vm_pid(lab, host):
    """The PID of the VM's running qemu, or None."""
    pidfile = lab.path(host, "pid")
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_lab_qemu(pid, lab, pidfile) else None


def lab_qemu_pids(lab):
    """Every qemu of this lab: from the pidfiles, and any the pidfiles miss (one killed mid-start)."""
    pids = set()
    for pidfile in lab.dir.glob("*.pid"):
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        if is_lab_qemu(pid, lab, pidfile):
            pids.add(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and is_lab_qemu(int(entry.name), lab):
            pids.add(int(entry.name))
    return pids


def stop_processes(pids, timeout=10):
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(Path("/proc/%d" % pid).exists() for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        if Path("/proc/%d" % pid).exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    while any(Path("/proc/%d" % pid).exists() for pid in pids):
        time.sleep(0.1)


def kernel_command_line(vm, pubkey):
    words = [
        "root=/dev/vda",
        "rw",
        "console=ttyS0",
        "panic=1",  # with -no-reboot: a kernel panic ends qemu, and `up` reports it at once
        "swarmplane.ip=%s/%d" % (vm.address, vm.prefix),
        "swarmplane.hostname=%s" % vm.host,
        "swarmplane.key=%s" % base64.b64encode(pubkey.encode()).decode(),
    ]
    if not vm.engine:
        words.append("swarmplane.docker=0")
    return " ".join(words)


def start_vm(lab, vm, pubkey):
    image = Path(vm.image)
    disk = lab.path(vm.host, "qcow2")
    if not disk.exists():
        run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image / "base.qcow2"), str(disk))
    ensure_tap(lab, vm)
    pidfile = lab.path(vm.host, "pid")
    pidfile.unlink(missing_ok=True)
    run(
        "ip",
        "netns",
        "exec",
        lab.netns,
        QEMU,
        "-name",
        "swarmplane-%s-%s" % (lab.name, vm.host),
        "-machine",
        "pc",
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-smp",
        str(vm.cpus),
        "-m",
        str(vm.memory),
        "-nodefaults",
        "-no-reboot",
        "-display",
        "none",
        "-kernel",
        str(image / "vmlinuz"),
        "-initrd",
        str(image / "initrd.img"),
        "-append",
        kernel_command_line(vm, pubkey),
        "-drive",
        "file=%s,if=virtio,format=qcow2" % disk,
        "-netdev",
        "tap,id=net0,ifname=%s,script=no,downscript=no" % vm.tap,
        "-device",
        "virtio-net-pci,netdev=net0,mac=%s,addr=0x3" % vm.mac,  # slot 3: the NIC is ens3 in the guest
        "-object",
        "rng-random,id=rng0,filename=/dev/urandom",
        "-device",
        "virtio-rng-pci,rng=rng0",
        "-chardev",
        "file,id=console,path=%s,append=on" % lab.path(vm.host, "console.log"),
        "-serial",
        "chardev:console",
        "-daemonize",
        "-pidfile",
        str(pidfile),
        host=vm.host,
    )


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def console_tail(lab, host, lines=25):
    """The last lines of a VM's serial console, without colours and blank lines."""
    try:
        text = lab.path(host, "console.log").read_text(errors="replace")
    except OSError:
        return "(no console log)"
    kept = [line.rstrip() for line in ANSI_ESCAPE.sub("", text).splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) or "(empty console log)"


# --- readiness -------------------------------------------------------------------------------------------


def ssh_banner(address):
    try:
        with socket.create_connection((address, 22), timeout=1) as sock:
            sock.settimeout(2)
            return sock.recv(4).startswith(b"SSH")
    except OSError:
        return False


class Boot:
    """One VM on its way up: SSH banner, then a command over SSH (the engine answering, on swarm VMs)."""

    PROBE = "cat /run/swarmplane/nic"
    ENGINE_PROBE = PROBE + " && docker info --format '{{.ServerVersion}}' >/dev/null"

    def __init__(self, lab, vm, started):
        self.lab, self.vm, self.started = lab, vm, started
        self.ssh_after = self.ready_after = None
        self.nic = None
        self.probe = None
        self.probe_started = 0.0

    @property
    def ready(self):
        return self.ready_after is not None

    def step(self, now):
        if vm_pid(self.lab, self.vm.host) is None:
            raise LabError("the qemu of %s exited" % self.vm.host, self.vm.host)
        if self.ssh_after is None:
            if ssh_banner(self.vm.address):
                self.ssh_after = now - self.started
            return
        if self.probe is None:
            command = ssh_command(self.vm, self.ENGINE_PROBE if self.vm.engine else self.PROBE)
            self.probe = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.probe_started = now
            return
        if self.probe.poll() is None:
            if now - self.probe_started > 30:
                self.probe.kill()
                self.probe.wait()
                self.probe = None
            return
        output = self.probe.stdout.read().strip()
        self.probe.stdout.close()
        returncode, self.probe = self.probe.returncode, None
        if returncode == 0 and output:
            self.nic = output.splitlines()[0]
            self.ready_after = now - self.started

    def stop(self):
        if self.probe is not None and self.probe.poll() is None:
            self.probe.kill()
            self.probe.wait()


def wait_ready(boots, timeout):
    deadline = time.monotonic() + timeout
    while True:
        pending = [boot for boot in boots if not boot.ready]
        if not pending:
            return
        now = time.monotonic()
        if now > deadline:
            vm, ssh_after = pending[0].vm, pending[0].ssh_after
            if ssh_after is None:
                raise LabError("%s did not answer SSH within %d s" % (vm.host, timeout), vm.host)
            what = "its engine did not answer" if vm.engine else "no command ran over SSH"
            raise LabError(
                "%s answered SSH after %.0f s, but %s within %d s" % (vm.host, ssh_after, what, timeout), vm.host
            )
        for boot in pending:
            boot.step(now)
            if boot.ready:
                ready = "engine answering" if boot.vm.engine else "ready"
                print(
                    "==> %s (%s) up: SSH after %.0f s, %s after %.0f s"
                    % (boot.vm.host, boot.vm.address, boot.ssh_after, ready, boot.ready_after),
                    flush=True,
                )
        time.sleep(1)


# --- images ----------------------------------------------------------------------------------------------


def load_web_images(lab, vms):
    """docker save the lab web images once, docker load them into every swarm VM as swarmplane/web:TAG."""
    images = {tag: build("build-web-image.sh", *flags) for tag, flags in WEB_IMAGES.items()}
    archive = lab.dir / "web-images.tar"
    subprocess.run(["docker", "save", "-o", str(archive), *images.values()], check=True)
    script = ["docker load -q >/dev/null"]
    for tag, image in images.items():
        script.append("docker tag %s %s:%s && docker rmi %s >/dev/null" % (image, WEB_REPOSITORY, tag, image))
    loads = []
    try:
        for vm in vms:
            if vm.engine:
                with archive.open("rb") as stdin:
                    command = ssh_command(vm, " && ".join(script))
                    loads.append((vm, subprocess.Popen(command, stdin=stdin, stderr=subprocess.PIPE, text=True)))
        for vm, load in loads:
            _, stderr = load.communicate()
            if load.returncode != 0:
                raise LabError("loading the web images into %s failed: %s" % (vm.host, stderr.strip()), vm.host)
    finally:
        for _, load in loads:
            if load.poll() is None:
                load.kill()
                load.wait()
        archive.unlink(missing_ok=True)
    return images


# --- inventory -------------------------------------------------------------------------------------------


def inventory_yaml(vms, nic):
    """The VM lab inventory, in the shape of inventories/sample/hosts.yml; load balancers outside `swarm`."""
    lines = [
        "---",
        "# Written by lab/vm.py: the VM lab (Debian's kernel under qemu). Regenerated by `make lab-vm`.",
        "all:",
        "  vars:",
        "    ansible_user: root",
        "    ansible_ssh_private_key_file: %s" % KEY,
        "    ansible_ssh_common_args: %s" % " ".join(SSH_OPTIONS),
        "    # The VMs have no default route: name the interface whose address the swarm advertises.",
        "    swarm_advertise_interface: %s" % nic,
        "    # No registry in the VM lab: lab/vm.py loads %s:%s into every swarm VM's engine."
        % (WEB_REPOSITORY, ", ".join(WEB_IMAGES)),
        "    lab_web_image: %s" % WEB_REPOSITORY,
        "  children:",
        "    swarm:",
        "      children:",
    ]
    for group in ("managers", "workers"):
        lines += group_yaml(group, [vm for vm in vms if vm.group == group], indent="        ")
    lines += group_yaml("loadbalancers", [vm for vm in vms if vm.group == "loadbalancers"], indent="    ")
    return "\n".join(lines) + "\n"


def group_yaml(group, vms, indent):
    lines = ["%s%s:" % (indent, group), "%s  hosts:%s" % (indent, "" if vms else " {}")]
    for vm in vms:
        lines += ["%s    %s:" % (indent, vm.host), "%s      ansible_host: %s" % (indent, vm.address)]
        if vm.vip:
            lines.append("%s      edge_lb_vip: %s  # a free address of the lab network" % (indent, vm.vip))
    return lines


def write_outputs(args, vms, nic):
    inventory = Path(args.inventory)
    inventory.parent.mkdir(parents=True, exist_ok=True)
    inventory.write_text(inventory_yaml(vms, nic))
    if args.instance_config:
        # Molecule's delegated driver reads this list to connect (JSON is valid YAML).
        instances = [
            dict(instance=vm.host, address=vm.address, user="root", port=22, identity_file=str(KEY)) for vm in vms
        ]
        Path(args.instance_config).write_text(json.dumps(instances, indent=1) + "\n")


# --- up / down / status ----------------------------------------------------------------------------------


def teardown(lab):
    """Remove everything of the lab: qemu processes, taps, bridge, namespace, veth, runtime dir, outputs."""
    state = lab.load_state()
    pids = lab_qemu_pids(lab)
    stop_processes(pids)
    if netns_exists(lab.netns):
        run("ip", "netns", "delete", lab.netns)  # the taps, the bridge and the veth's inner end go with it
    if link_exists(lab.veth):
        ip("link", "delete", lab.veth)
    for output in state.get("outputs", []):
        Path(output).unlink(missing_ok=True)
    shutil.rmtree(lab.dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        RUNTIME_ROOT.rmdir()  # only when no other lab is left
    return len(pids)


def reconcile(lab, vms, state, pubkey):
    """Stop what is not wanted (or changed), start what is not running; returns the VMs started."""
    wanted = {vm.host: vm for vm in vms}
    for host, spec in list(state["vms"].items()):
        if host not in wanted or asdict(wanted[host]) != spec:
            reason = "not in the requested lab" if host not in wanted else "its settings or image changed"
            print("==> removing %s: %s" % (host, reason))
            pid = vm_pid(lab, host)
            stop_processes({pid} if pid else set())
            for suffix in ("qcow2", "pid", "console.log"):
                lab.path(host, suffix).unlink(missing_ok=True)
            if netns_exists(lab.netns):
                subprocess.run(["ip", "-n", lab.netns, "link", "delete", tap_name(host)], capture_output=True)
            del state["vms"][host]
            lab.save_state(state)
    started = []
    for vm in vms:
        if vm.host in state["vms"] and vm_pid(lab, vm.host):
            print("==> %s: running, reused" % vm.host)
            continue
        print("==> starting %s (%s)" % (vm.host, vm.address), flush=True)
        state["vms"][vm.host] = asdict(vm)
        lab.save_state(state)
        start_vm(lab, vm, pubkey)
        started.append(vm)
    return started


def build_vm_image():
    """lab/build-vm-image.sh in its own process group: an interrupt reaches debootstrap too, and the
    script's trap then removes its temporary directory (subprocess.run would SIGKILL the script alone)."""
    process = subprocess.Popen(
        [str(REPO / "lab" / "build-vm-image.sh")], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate()
    except BaseException:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        raise
    if process.returncode != 0:
        raise LabError("lab/build-vm-image.sh failed (exit %d)" % process.returncode)
    return Path(output.strip().splitlines()[-1])


def prepare(args, lab):
    """Checks and inputs of `up` that create nothing in the lab: the subnet, the key, the image."""
    subnet = ipaddress.ip_network(args.subnet)
    check_subnet(subnet, lab.veth)
    pubkey = ensure_key()
    vms = plan(args, build_vm_image())
    return subnet, vms, pubkey


def ensure_network(lab, state, subnet):
    """The lab's state, its network created or reused; a lab on another subnet is removed first."""
    network_ok = netns_exists(lab.netns) and link_exists(lab.veth)
    if state and (state.get("subnet") != str(subnet) or not network_ok):
        print("==> recreating lab '%s': its network changed or is incomplete" % lab.name)
        state = {}
    if not state:
        teardown(lab)  # whatever is left of it
        state = {"subnet": str(subnet), "vms": {}}
        lab.save_state(state)
        create_network(lab, subnet)
    return state


def start(args, lab, subnet, vms, pubkey):
    state = ensure_network(lab, lab.load_state(), subnet)
    state["outputs"] = [str(Path(p).resolve()) for p in (args.inventory, args.instance_config) if p]
    lab.save_state(state)
    started_at = time.monotonic()
    started = reconcile(lab, vms, state, pubkey)
    boots = [Boot(lab, vm, started_at) for vm in vms]
    try:
        wait_ready(boots, args.timeout)
    finally:
        for boot in boots:
            boot.stop()
    if started:
        print("==> %d VM(s) started, all ready after %.0f s" % (len(started), time.monotonic() - started_at))
    load_web_images(lab, vms)
    print("==> loaded %s:%s into the swarm VMs" % (WEB_REPOSITORY, ", ".join(WEB_IMAGES)))
    write_outputs(args, vms, boots[0].nic)
    print(
        "==> VM lab '%s': %d manager(s), %d worker(s), %d load balancer(s) on %s (this machine: %s on %s); inventory %s"
        % (
            lab.name,
            args.managers,
            args.workers,
            args.loadbalancers,
            subnet,
            subnet.network_address + 1,
            lab.veth,
            args.inventory,
        )
    )


def raise_terminated(signum, frame):
    raise Terminated("terminated by signal %d" % signum)


def up(args):
    """`up`; once it has created anything, a failure or SIGINT/SIGTERM removes the whole lab again (after
    showing the failing VM's console), so no half lab is left behind."""
    signal.signal(signal.SIGTERM, raise_terminated)
    lab = Lab(args.name)
    try:
        subnet, vms, pubkey = prepare(args, lab)
    except LabError as error:
        sys.exit("lab/vm.py up: %s" % error)
    except (KeyboardInterrupt, Terminated):
        sys.exit("lab/vm.py up: interrupted")
    try:
        start(args, lab, subnet, vms, pubkey)
    except (Exception, KeyboardInterrupt, Terminated) as error:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        fail_and_clean(lab, error)


def fail_and_clean(lab, error):
    message = "interrupted" if isinstance(error, (KeyboardInterrupt, Terminated)) else str(error)
    print("==> lab/vm.py up failed: %s" % message, file=sys.stderr)
    host = getattr(error, "host", None)
    hosts = [host] if host else sorted(lab.load_state().get("vms", {}))
    for name in hosts:
        tail = console_tail(lab, name, lines=25 if len(hosts) == 1 else 8)
        print("--- console of %s (last lines) ---\n%s" % (name, tail), file=sys.stderr)
    print("==> removing lab '%s'" % lab.name, file=sys.stderr)
    teardown(lab)
    sys.exit(1)


def down(args):
    names = all_lab_names() if args.all else [args.name]
    for name in names:
        lab = Lab(name)
        existed = lab.dir.exists() or netns_exists(lab.netns) or link_exists(lab.veth)
        killed = teardown(lab)
        if existed or killed:
            print("==> VM lab '%s' removed (%d qemu process(es) stopped)" % (name, killed))
        elif not args.all:
            print("==> no VM lab '%s'" % name)


def all_lab_names():
    names = set()
    if RUNTIME_ROOT.is_dir():
        names.update(p.name for p in RUNTIME_ROOT.iterdir() if p.is_dir())
    for directory in (Path("/run/netns"), Path("/sys/class/net")):
        if directory.is_dir():
            names.update(p.name[len(PREFIX) :] for p in directory.iterdir() if p.name.startswith(PREFIX))
    return sorted(n for n in names if NAME_PATTERN.match(n))


def status(args):
    lab = Lab(args.name)
    state = lab.load_state()
    if not state:
        print("VM lab '%s' does not exist" % lab.name)
        return
    print("VM lab '%s': subnet %s, namespace %s, runtime dir %s" % (lab.name, state["subnet"], lab.netns, lab.dir))
    for host, spec in state["vms"].items():
        pid = vm_pid(lab, host)
        health = (
            ("qemu %d, SSH %s" % (pid, "answers" if ssh_banner(spec["address"]) else "silent")) if pid else "stopped"
        )
        print("  %-12s %-14s %-15s %s" % (host, spec["group"], spec["address"], health))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="create or reuse the VMs and write their inventory")
    p_up.add_argument("--name", default="vm")
    p_up.add_argument("--managers", type=int, default=1)
    p_up.add_argument("--workers", type=int, default=1)
    p_up.add_argument("--loadbalancers", type=int, default=0)
    p_up.add_argument("--inventory", default=str(REPO / "inventories" / "lab-vm" / "hosts.yml"))
    p_up.add_argument("--instance-config", help="also write the VMs as a Molecule instance config")
    p_up.add_argument("--subnet", default="192.168.231.0/24", help="the lab network (this machine gets .1)")
    p_up.add_argument("--memory", type=int, default=1536, help="MiB per VM")
    p_up.add_argument("--cpus", type=int, default=1, help="vCPUs per VM")
    p_up.add_argument("--timeout", type=int, default=600, help="seconds to wait for SSH and the engines")
    p_up.set_defaults(func=up)
    p_down = sub.add_parser("down", help="stop the VMs and remove the lab's network and files")
    target = p_down.add_mutually_exclusive_group(required=True)
    target.add_argument("--name")
    target.add_argument("--all", action="store_true", help="every VM lab on this machine")
    p_down.set_defaults(func=down)
    p_status = sub.add_parser("status", help="the lab's VMs and whether they run")
    p_status.add_argument("--name", default="vm")
    p_status.set_defaults(func=status)
    args = parser.parse_args()
    if args.name is not None and not NAME_PATTERN.match(args.name):
        parser.error("--name: 1 to 10 characters, lower-case letters, digits and '-' (got %r)" % args.name)
    if args.command == "up":
        if args.managers < 1:
            parser.error("--managers must be at least 1")
        if min(args.workers, args.loadbalancers) < 0 or args.cpus < 1 or args.memory < 256:
            parser.error("--workers/--loadbalancers >= 0, --cpus >= 1, --memory >= 256")
        try:
            ipaddress.ip_network(args.subnet)
        except ValueError as error:
            parser.error("--subnet: %s" % error)
    args.func(args)


if __name__ == "__main__":
    main()
