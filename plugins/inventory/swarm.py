# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory plugin: the nodes of a live Docker Swarm, read from one manager over SSH or a local socket."""

from __future__ import annotations

DOCUMENTATION = r"""
name: swarm
short_description: The nodes of a live Docker Swarm, read from one of its managers
version_added: "0.4.0"
description:
  - Builds an inventory from a running swarm. One SSH round trip to a manager runs C(docker node ls -q) and
    C(docker node inspect) there (or, with O(manager=local), the engine at O(docker_host) is asked through the Docker
    SDK); any manager will do, the leader or not, since every manager holds the same node list.
  - "Groups: C(swarm) (every node) with the children C(managers) and C(workers) (the node's role), C(leader) (the
    current raft leader), C(availability_active), C(availability_pause), C(availability_drain),
    C(status_ready), C(status_down) (also C(status_unknown), C(status_disconnected)) and one group per node label,
    C(label_<key>_<value>), with every character a group name cannot hold replaced by C(_)
    (C(zone=eu-west.1) gives C(label_zone_eu_west_1)). O(group_prefix) is put in front of every one of them."
  - The names C(swarm), C(managers) and C(workers) are those of the swarmplane playbooks' inventories, so the
    playbooks run against this inventory as they do against a static one, and C(leader) lets a play target the
    current leader (C(hosts=leader)).
  - "Host names are the nodes' host names. Host variables: C(ansible_host) (the node's address: C(Status.Addr),
    or for a manager that reports C(0.0.0.0) the host part of C(ManagerStatus.Addr)), C(swarm_node_id),
    C(swarm_node_hostname), C(swarm_node_address), C(swarm_node_engine_version), C(swarm_node_role),
    C(swarm_node_status), C(swarm_node_reachability), C(swarm_node_is_leader), C(swarm_node_live_availability),
    C(swarm_node_live_labels). The last two are not called C(swarm_node_availability) and C(swarm_node_labels):
    those are the swarm role's variables for the wanted state, which the live state must not override."
  - A host name the swarm lists twice (a node that left and joined again leaves a Down entry behind) is given
    to the live entry; the stale one is left out with a warning naming its ID (C(docker node rm <id>) removes
    it). Two live nodes with one host name both stay, the second under its node ID, with a warning.
  - With O(connection_vars=true) the SSH settings given here (O(ssh_user), O(ssh_port), O(ssh_private_key_file),
    O(ssh_args), O(become)) are also set as variables of the C(swarm) group (C(ansible_user), C(ansible_port),
    C(ansible_ssh_private_key_file), C(ansible_ssh_common_args), C(ansible_become)), the lowest precedence an
    inventory has, so C(group_vars) beside the inventory file or the play override them.
  - Errors (no manager reachable, a host that is not a manager, an engine that is not in a swarm) name the option
    to fix. Ansible reports a failed inventory source as a warning and goes on without it, unless
    C([inventory] unparsed_is_failed = true) (C(ANSIBLE_INVENTORY_UNPARSED_FAILED=true)), which AWX sets.
  - The configuration file's name must end in C(swarm.yml) or C(swarm.yaml).
  - "With O(cache=true), the node list is kept in the inventory cache (O(cache_plugin), for example
    C(ansible.builtin.jsonfile) with O(cache_connection)) for O(cache_timeout) seconds under a key made of the
    configuration file's path and the source it names (O(manager), and O(docker_host) for a local socket), so a
    file pointed at another swarm never gets the previous swarm's nodes. C(--flush-cache) and
    C(meta: refresh_inventory) read the swarm again and refresh the cache."
options:
  plugin:
    description: The name of this plugin; it marks the file as this plugin's configuration.
    required: true
    type: str
    choices: [swarmplane.cluster.swarm]
  manager:
    description:
      - Where to read the nodes. A manager's SSH destination, C(host) or C(host:port) (C([fd00::1]:22) for an
        IPv6 address with a port), or C(local) for the engine at O(docker_host) on this machine.
      - A list is tried in order until one answers as a manager; the error lists why each failed.
    type: list
    elements: str
    required: true
    env:
      - name: SWARMPLANE_SWARM_MANAGER
  ssh_user:
    description: The SSH user on the manager; the SSH default (C(~/.ssh/config), the local user) when unset.
    type: str
    env:
      - name: SWARMPLANE_SWARM_SSH_USER
  ssh_port:
    description: The SSH port of the manager, unless O(manager) names one; the SSH default when unset.
    type: int
    env:
      - name: SWARMPLANE_SWARM_SSH_PORT
  ssh_private_key_file:
    description: The private key to authenticate with (C(ssh -i)).
    type: path
    env:
      - name: SWARMPLANE_SWARM_SSH_PRIVATE_KEY_FILE
  ssh_args:
    description:
      - More C(ssh) arguments, one list item per argument, for example
        V([-o, StrictHostKeyChecking=accept-new]). C(BatchMode=yes) is always set, so SSH never prompts; a host key
        that is not known fails until it is in C(known_hosts) or accepted this way.
    type: list
    elements: str
    default: []
  become:
    description:
      - Run the C(docker) commands on the manager with C(sudo -n) (a user that is not root and not in the
        C(docker) group). C(sudo) must not ask for a password.
    type: bool
    default: false
  docker_command:
    description: The C(docker) CLI on the manager.
    type: str
    default: docker
  docker_host:
    description: The engine's socket or URL when O(manager=local) (read through the Docker SDK on this machine).
    type: str
    default: unix:///var/run/docker.sock
  timeout:
    description:
      - Seconds to wait for a manager, SSH connection and commands included (or for the local engine's answer).
        A manager that does not answer in time counts as unreachable and the next one of O(manager) is tried.
    type: int
    default: 30
  connection_vars:
    description:
      - Set the SSH settings of this file as variables of the C(swarm) group, so the hosts are reached as the
        manager was. Only the settings given are set.
    type: bool
    default: true
  group_prefix:
    description: Put in front of the name of every group this plugin makes (not of those from O(groups) or O(keyed_groups)).
    type: str
    default: ""
extends_documentation_fragment:
  - constructed
  - inventory_cache
requirements:
  - C(ssh) on the controller; the C(docker) CLI on the manager.
  - With O(manager=local), the Docker SDK for Python on the controller.
author:
  - swarmplane contributors (@swarmplane)
"""

EXAMPLES = r"""
# inventories/live/swarm.yml: the nodes as a manager sees them, over SSH.
plugin: swarmplane.cluster.swarm
manager:
  - 192.0.2.11
  - 192.0.2.12
ssh_user: admin
ssh_private_key_file: ~/.ssh/swarm_ed25519
become: true

---
# The controller is a manager: read the local engine.
plugin: swarmplane.cluster.swarm
manager: local

---
# Cache the node list for 10 minutes; reach the nodes on another address than the one they advertise;
# group by the node label "zone" whatever its value.
plugin: swarmplane.cluster.swarm
manager: 192.0.2.11
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/swarmplane-inventory
cache_timeout: 600
compose:
  ansible_host: swarm_node_hostname ~ '.mgmt.example.com'
keyed_groups:
  - key: swarm_node_live_labels.zone | default('none')
    prefix: zone
"""

import hashlib
import json
import shlex
import subprocess

from ansible.errors import AnsibleParserError
from ansible.parsing.utils.addresses import parse_address
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

CONFIG_SUFFIXES = ("swarm.yml", "swarm.yaml")
LOCAL = "local"
CACHE_FORMAT = 1
# Connection variables set on the swarm group from the plugin's own SSH options.
CONNECTION_VARS = (
    ("ssh_user", "ansible_user"),
    ("ssh_port", "ansible_port"),
    ("ssh_private_key_file", "ansible_ssh_private_key_file"),
)
NOT_A_MANAGER = "not a swarm manager"


class SourceError(Exception):
    """One manager could not give the node list; the message says why (and what to fix)."""


# --------------------------------------------------------------------------- pure logic


def parse_manager(text):
    """'host', 'host:port', '[v6]:port' -> (host, port or None); an SSH destination that could be read as an option
    or holds a user is refused."""
    text = str(text or "").strip()
    if not text:
        raise SourceError("an empty entry in `manager`")
    if "@" in text:
        raise SourceError("manager %r: give the user in `ssh_user`, not in `manager`" % text)
    try:
        host, port = parse_address(text)
    except Exception:  # ansible's parser raises AnsibleError and friends
        raise SourceError("manager %r is not a host or host:port" % text) from None
    if not host or host.startswith("-"):
        raise SourceError("manager %r is not a host or host:port" % text)
    return host, port


def remote_command(docker_command="docker", become=False):
    """The one command the manager runs: the node IDs, then all of them inspected, as one JSON array."""
    docker = shlex.quote(docker_command)
    script = "ids=$(%s node ls -q) || exit $?; exec %s node inspect $ids" % (docker, docker)
    command = "sh -c %s" % shlex.quote(script)
    return "sudo -n " + command if become else command


def ssh_argv(host, port=None, user=None, key_file=None, ssh_args=(), timeout=30, command=""):
    """ssh's argv: never prompts, bounded connection, the destination after `--` so it cannot be an option."""
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=%d" % max(1, int(timeout))]
    if port:
        argv += ["-p", str(port)]
    if user:
        argv += ["-l", user]
    if key_file:
        argv += ["-i", key_file]
    argv += list(ssh_args or [])
    return argv + ["--", host, command]


def explain_remote_failure(manager, rc, stderr, become=False):
    """The message for a failed remote command: what went wrong, in ssh's or docker's words, and the fix."""
    words = " ".join((stderr or "").split()) or "no error output"
    if rc == 255:
        hint = ""
        if "Host key verification failed" in words:
            hint = (
                "; add the manager's key to known_hosts, or accept new keys with "
                "`ssh_args: [-o, StrictHostKeyChecking=accept-new]`"
            )
        elif "Permission denied" in words:
            hint = "; check `ssh_user` and `ssh_private_key_file`"
        return "manager %s: SSH failed (%s)%s" % (manager, words, hint)
    if NOT_A_MANAGER in words:
        return (
            "manager %s is not a swarm manager (%s); point the option `manager` at a manager node, one where "
            "`docker node ls` works" % (manager, words)
        )
    if "permission denied" in words.lower() and "docker" in words.lower() and not become:
        return (
            "manager %s: the SSH user may not use the engine (%s); set `become: true` or add the user to the "
            "docker group" % (manager, words)
        )
    if rc == 127:
        return "manager %s: the docker CLI is not there (%s); set `docker_command`" % (manager, words)
    if "sudo" in words and become:
        return "manager %s: sudo failed (%s); `become` needs sudo without a password" % (manager, words)
    return "manager %s: `docker node ls` failed with exit code %s (%s)" % (manager, rc, words)


def _host_part(addr):
    """'10.0.0.1:2377' -> '10.0.0.1'; '[fd00::1]:2377' -> 'fd00::1'."""
    addr = str(addr or "").strip()
    if addr.startswith("["):
        return addr[1:].split("]", 1)[0]
    if addr.count(":") == 1:
        return addr.split(":", 1)[0]
    return addr


def node_address(node):
    """The address to reach a node at: Status.Addr, or for a manager reporting 0.0.0.0 (or nothing), the host
    part of ManagerStatus.Addr."""
    address = str((node.get("Status") or {}).get("Addr") or "")
    if address in ("", "0.0.0.0", "::"):
        manager_address = _host_part((node.get("ManagerStatus") or {}).get("Addr"))
        if manager_address and manager_address not in ("0.0.0.0", "::"):
            return manager_address
    return address


def normalize_node(node):
    """One `docker node inspect` object -> the record this plugin keeps (and caches)."""
    spec = node.get("Spec") or {}
    status = node.get("Status") or {}
    description = node.get("Description") or {}
    manager = node.get("ManagerStatus") or {}
    return dict(
        id=node.get("ID") or "",
        hostname=description.get("Hostname") or node.get("ID") or "",
        role=str(spec.get("Role") or "worker").lower(),
        availability=str(spec.get("Availability") or "active").lower(),
        status=str(status.get("State") or "unknown").lower(),
        address=node_address(node),
        engine_version=(description.get("Engine") or {}).get("EngineVersion") or "",
        labels={str(k): str(v) for k, v in (spec.get("Labels") or {}).items()},
        leader=bool(manager.get("Leader")),
        reachability=str(manager.get("Reachability") or "").lower(),
        updated_at=node.get("UpdatedAt") or "",
    )


def parse_node_inspect(text):
    """`docker node inspect` output (a JSON array) -> records; ValueError when it is not that."""
    nodes = json.loads(text)
    if not isinstance(nodes, list) or not all(isinstance(n, dict) and n.get("ID") for n in nodes):
        raise ValueError("not a list of nodes")
    return [normalize_node(n) for n in nodes]


def _liveness(record):
    return (record["status"] == "ready", record["updated_at"], record["id"])


def assign_hostnames(records):
    """[(inventory host name, record)] in inventory order (managers first, then by name), and warnings.

    A host name listed more than once goes to its Ready entry (the most recently updated among several); the
    others are left out when they are not Ready (stale entries), or kept under their node ID when they are."""
    by_name = {}
    for record in records:
        by_name.setdefault(record["hostname"], []).append(record)
    chosen, warnings = [], []
    for name, entries in by_name.items():
        entries = sorted(entries, key=_liveness, reverse=True)
        chosen.append((name, entries[0]))
        for other in entries[1:]:
            if other["status"] == "ready":
                chosen.append((other["id"], other))
                warnings.append(
                    "two live swarm nodes are called %s: %s is in the inventory as %s, %s as %s"
                    % (name, entries[0]["id"], name, other["id"], other["id"])
                )
            else:
                warnings.append(
                    "swarm node %s (%s, %s) is a stale entry of host %s, which is node %s in the inventory: left "
                    "out; `docker node rm %s` on a manager removes it"
                    % (other["id"], name, other["status"], name, entries[0]["id"], other["id"])
                )
    chosen.sort(key=lambda item: (item[1]["role"] != "manager", item[0]))
    return chosen, warnings


def label_group(key, value):
    """The raw (unsanitized) group name of a node label."""
    return "label_%s_%s" % (key, value)


def node_groups(record, prefix=""):
    """The raw names of the groups a node belongs to (sanitized by the caller)."""
    groups = [
        prefix + ("managers" if record["role"] == "manager" else "workers"),
        prefix + "availability_" + record["availability"],
        prefix + "status_" + record["status"],
    ]
    if record["leader"]:
        groups.append(prefix + "leader")
    groups += [prefix + label_group(k, v) for k, v in sorted(record["labels"].items())]
    return groups


def node_hostvars(record):
    return dict(
        ansible_host=record["address"],
        swarm_node_id=record["id"],
        swarm_node_hostname=record["hostname"],
        swarm_node_address=record["address"],
        swarm_node_engine_version=record["engine_version"],
        swarm_node_role=record["role"],
        swarm_node_status=record["status"],
        swarm_node_reachability=record["reachability"],
        swarm_node_is_leader=record["leader"],
        swarm_node_live_availability=record["availability"],
        swarm_node_live_labels=dict(record["labels"]),
    )


def source_fingerprint(managers, docker_host):
    """What the cache key adds to the configuration file's path: the source the file names."""
    source = [str(m).strip() for m in managers]
    if LOCAL in source:
        source.append(docker_host)
    return hashlib.sha256(json.dumps(source).encode()).hexdigest()[:10]


# --------------------------------------------------------------------------- the plugin


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "swarmplane.cluster.swarm"

    def verify_file(self, path):
        """Only files named *swarm.yml / *swarm.yaml."""
        return super().verify_file(path) and str(path).endswith(CONFIG_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        managers = [m for m in (self.get_option("manager") or []) if str(m).strip()]
        if not managers:
            raise AnsibleParserError("%s: the option `manager` names no manager" % path)
        cache_key = "%s_%s" % (self.get_cache_key(path), source_fingerprint(managers, self.get_option("docker_host")))

        # As Ansible's inventory plugins do: read the cache when caching is on and this parse may use it
        # (cache=False comes from --flush-cache and meta: refresh_inventory), refresh it when it may not or
        # holds nothing usable.
        user_cache_setting = self.get_option("cache")
        attempt_to_read_cache = user_cache_setting and cache
        cache_needs_update = user_cache_setting and not cache
        records = None
        if attempt_to_read_cache:
            try:
                cached = self._cache[cache_key]
            except KeyError:
                cache_needs_update = True
            else:
                if isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT:
                    records = cached["nodes"]
                    self.display.vvv("swarm inventory: %d nodes from the cache (%s)" % (len(records), cache_key))
                else:
                    cache_needs_update = True
        if records is None:
            records, answered = self.read_nodes(managers)
            self.display.vvv("swarm inventory: %d nodes from manager %s" % (len(records), answered))
        if cache_needs_update:
            self._cache[cache_key] = dict(format=CACHE_FORMAT, nodes=records)
        self.populate(records)

    # ----------------------------------------------------------------------- reading the swarm

    def read_nodes(self, managers):
        """(records, manager that answered) from the first manager that answers; AnsibleParserError naming
        every failure otherwise."""
        failures = []
        for manager in managers:
            try:
                if str(manager).strip() == LOCAL:
                    return self.read_local(), LOCAL
                return self.read_over_ssh(str(manager)), str(manager)
            except SourceError as exc:
                failures.append(str(exc))
                self.display.vvv("swarm inventory: %s" % exc)
        if len(failures) == 1:
            raise AnsibleParserError("swarm inventory: %s" % failures[0])
        raise AnsibleParserError("swarm inventory: no manager gave the node list: %s" % "; ".join(failures))

    def read_over_ssh(self, manager):
        host, port = parse_manager(manager)
        timeout = self.get_option("timeout")
        argv = ssh_argv(
            host,
            port=port or self.get_option("ssh_port"),
            user=self.get_option("ssh_user"),
            key_file=self.get_option("ssh_private_key_file"),
            ssh_args=self.get_option("ssh_args"),
            timeout=timeout,
            command=remote_command(self.get_option("docker_command"), self.get_option("become")),
        )
        self.display.vvv("swarm inventory: %s" % shlex.join(argv))
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise SourceError(
                "manager %s: no answer within %s s (option `timeout`); is the host up and SSH reachable?"
                % (manager, timeout)
            ) from None
        except OSError as exc:
            raise SourceError("cannot run ssh: %s" % exc) from None
        if done.returncode != 0:
            raise SourceError(explain_remote_failure(manager, done.returncode, done.stderr, self.get_option("become")))
        try:
            return parse_node_inspect(done.stdout)
        except ValueError as exc:
            raise SourceError(
                "manager %s: `docker node inspect` gave no node list (%s): %.200s" % (manager, exc, done.stdout)
            ) from None

    def read_local(self):
        docker_host = self.get_option("docker_host")
        try:
            import docker
        except ImportError:
            raise SourceError(
                "manager local: the Docker SDK for Python is not installed on this machine (pip install docker); "
                "or name a manager reached over SSH in `manager`"
            ) from None
        try:
            client = docker.APIClient(base_url=docker_host, version="auto", timeout=self.get_option("timeout"))
            swarm = client.info().get("Swarm") or {}
            if not swarm.get("ControlAvailable"):
                state = swarm.get("LocalNodeState") or "inactive"
                what = (
                    "not in a swarm"
                    if state == "inactive"
                    else "a worker, not a manager"
                    if state == "active"
                    else state
                )
                raise SourceError(
                    "manager local: the engine at %s (option `docker_host`) is %s; point `manager` at a manager "
                    "node, or `docker_host` at a manager's engine" % (docker_host, what)
                )
            return [normalize_node(n) for n in client.nodes()]
        except SourceError:
            raise
        except Exception as exc:  # the SDK's and requests' errors alike
            words = str(getattr(exc, "explanation", None) or exc) or type(exc).__name__
            raise SourceError(
                "manager local: the engine at %s (option `docker_host`) failed: %s" % (docker_host, words)
            ) from None

    # ----------------------------------------------------------------------- populating the inventory

    def _group(self, name):
        return self.inventory.add_group(self._sanitize_group_name(name))

    def populate(self, records):
        prefix = self.get_option("group_prefix") or ""
        top = self._group(prefix + "swarm")
        for child in ("managers", "workers"):
            self.inventory.add_child(top, self._group(prefix + child))
        self._group(prefix + "leader")
        if self.get_option("connection_vars"):
            self.set_connection_vars(top)
        chosen, warnings = assign_hostnames(records)
        for warning in warnings:
            self.display.warning(warning)
        strict = self.get_option("strict")
        for name, record in chosen:
            host = self.inventory.add_host(name)
            for group in node_groups(record, prefix):
                self.inventory.add_child(self._group(group), host)
            hostvars = node_hostvars(record)
            for key, value in hostvars.items():
                self.inventory.set_variable(host, key, value)
            hostvars = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option("compose"), hostvars, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, host, strict=strict)

    def set_connection_vars(self, group):
        for option, variable in CONNECTION_VARS:
            value = self.get_option(option)
            if value not in (None, ""):
                self.inventory.set_variable(group, variable, value)
        if self.get_option("ssh_args"):
            self.inventory.set_variable(group, "ansible_ssh_common_args", shlex.join(self.get_option("ssh_args")))
        if self.get_option("become"):
            self.inventory.set_variable(group, "ansible_become", True)
