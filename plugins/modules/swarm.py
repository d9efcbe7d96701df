#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swarm
short_description: Initialize, update, join, leave or unlock a Docker Swarm on the local engine
version_added: "0.1.0"
description:
  - Runs on a swarm host and talks to the local Docker engine (C(docker swarm init), C(docker swarm join),
    C(docker swarm update), C(docker swarm leave), C(docker swarm unlock)).
  - Reads the node's live swarm state first and only acts on the difference, so every state is idempotent.
  - C(state=join) into the swarm the node is already in is a no-op; a node that is in a B(different) swarm,
    or stuck in the C(pending) or C(error) state, is refused with an explanation unless O(force=true),
    which leaves first and joins again.
  - Workers do not know the ID of their cluster; they are matched by the node IDs of the managers they
    talk to (O(manager_node_ids)), else by manager addresses (O(remote_addrs)).
  - C(state=unlocked) is what to run after an engine (re)start - it waits for the engine to answer, unlocks a
    manager that autolock left locked, and returns once the node is back in its swarm (a manager - reachable in
    the raft, as its leader sees it). The whole wait is bounded by O(timeout).
options:
  state:
    description:
      - V(present) initializes a swarm with this node as its first manager, or updates the settings
        of the swarm this node manages.
      - V(join) joins the swarm of O(remote_addrs) with O(join_token); the token decides the role.
      - V(absent) leaves the swarm (C(docker swarm leave)).
      - V(unlocked) waits for the engine, unlocks a locked node with O(unlock_key) and waits until the node is
        back in its swarm. A node outside any swarm is left as it is once its engine answers.
    type: str
    choices: [present, join, absent, unlocked]
    default: present
  advertise_addr:
    description:
      - Address (optionally C(addr:port)) other nodes use to reach this one, for V(present) and V(join).
      - Can only be chosen at init or join.
    type: str
  listen_addr:
    description: Address and port the swarm control plane listens on.
    type: str
    default: 0.0.0.0:2377
  data_path_addr:
    description: Address used for data path (VXLAN) traffic, when it differs from O(advertise_addr).
    type: str
  data_path_port:
    description:
      - UDP port of the VXLAN data path (engine default 4789). Can only be set at init; a different value
        on a live swarm is reported as a warning.
    type: int
  default_addr_pool:
    description: Subnets (CIDR) that overlay networks get their subnets from. Init only.
    type: list
    elements: str
  subnet_size:
    description: Prefix length of the subnets cut from O(default_addr_pool). Init only.
    type: int
  force_new_cluster:
    description:
      - Force a new single-manager cluster from this node's raft state (disaster recovery,
        C(docker swarm init --force-new-cluster)), for V(present).
      - Only done when this node is a manager whose swarm has no leader (its other managers are gone, or a raft
        archive was just restored here); a manager of a swarm that has a leader is left as it is, so a re-run
        changes nothing.
    type: bool
    default: false
  rotate_join_tokens:
    description:
      - Join tokens to replace with new ones, for V(present) on a manager (C(docker swarm join-token --rotate)).
        Nodes that already joined are not affected; the old tokens stop working for new joins.
      - Rotates every time it is given, so pass it only when a rotation is wanted.
    type: list
    elements: str
    choices: [worker, manager]
    default: []
  autolock:
    description: Encrypt the managers' raft keys with an unlock key that must be given after a restart.
    type: bool
  task_history_retention_limit:
    description: How many old tasks per service the swarm keeps.
    type: int
  snapshot_interval:
    description: Raft log entries between snapshots.
    type: int
  keep_old_snapshots:
    description: Raft snapshots to keep beyond the current one.
    type: int
  log_entries_for_slow_followers:
    description: Raft log entries kept for slow followers after a snapshot.
    type: int
  heartbeat_tick:
    description: Raft ticks between heartbeats. Init only.
    type: int
  election_tick:
    description: Raft ticks without a leader before an election. Init only.
    type: int
  dispatcher_heartbeat_period:
    description: Seconds between heartbeats from nodes to managers.
    type: int
  node_cert_expiry:
    description: Validity of node certificates, in seconds.
    type: int
  labels:
    description: Labels of the swarm itself; replaced as a whole when given.
    type: dict
  remote_addrs:
    description: Addresses of managers of the swarm to join (port 2377 is added when missing).
    type: list
    elements: str
  join_token:
    description: Worker or manager join token. Never logged.
    type: str
  unlock_key:
    description:
      - The swarm's unlock key (C(docker swarm unlock-key) on a manager shows it), for V(unlocked). Never logged.
      - Only needed when the node is locked; a wrong key fails with the engine's words and leaves the node locked.
    type: str
  availability:
    description: Availability of the node from the moment it joins (C(docker swarm join --availability)).
    type: str
    choices: [active, pause, drain]
  cluster_id:
    description: ID of the swarm a manager must already belong to, for V(join); a different one is an error.
    type: str
  manager_node_ids:
    description: Node IDs of the managers of the swarm to join; used to recognise the swarm a worker is in.
    type: list
    elements: str
  force:
    description:
      - With V(join), leave a different swarm (or a pending/error state) and join this one.
      - With V(absent), let a manager leave (C(docker swarm leave --force)); the last manager leaving
        destroys the swarm.
    type: bool
    default: false
  return_join_tokens:
    description:
      - Return the join tokens (for V(present)). Register the result with C(no_log=true) when this is on;
        M(swarmplane.cluster.swarm_info) can return them too.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for an engine API call, and for a joined node to become active.
      - With V(unlocked), the whole wait - the engine answering, the unlock, the node back in its swarm.
    type: int
    default: 60
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - swarmplane.cluster.engine
attributes:
  platform:
    platforms: posix
  check_mode:
    support: full
  diff_mode:
    support: full
requirements:
  - Docker engine with swarm support (API 1.30 or newer)
author:
  - swarmplane contributors (@swarmplane)
"""

EXAMPLES = r"""
- name: Initialize the swarm on the first manager
  swarmplane.cluster.swarm:
    state: present
    advertise_addr: 10.0.8.92
    default_addr_pool: [10.20.0.0/16]
    subnet_size: 24

- name: Join a worker, drained from the start
  swarmplane.cluster.swarm:
    state: join
    remote_addrs: ["10.0.8.92:2377"]
    join_token: "{{ worker_token }}"
    advertise_addr: 10.0.8.100
    availability: drain

- name: Replace the worker join token (old tokens stop working for new joins)
  swarmplane.cluster.swarm:
    state: present
    rotate_join_tokens: [worker]

- name: Leave the swarm (a manager needs force)
  swarmplane.cluster.swarm:
    state: absent
    force: true

- name: After an engine restart, unlock the manager and wait until it is back in the raft
  swarmplane.cluster.swarm:
    state: unlocked
    unlock_key: "{{ swarm_unlock_key }}"
    timeout: 120
"""

RETURN = r"""
action:
  description:
    - What was done (or would be, in check mode) - none, init, force_new_cluster, update, join, rejoin, leave or
      unlock.
  returned: always
  type: str
  sample: join
rotated:
  description: The join tokens rotated (or that would be, in check mode).
  returned: when O(rotate_join_tokens) is given
  type: list
  elements: str
  sample: [worker]
cluster_id:
  description: ID of the swarm; known on managers only.
  returned: when the node is a manager after the run
  type: str
node_id:
  description: ID of this node in the swarm (empty after leaving).
  returned: always
  type: str
node_addr:
  description: The address this node advertises to the swarm (empty outside a swarm).
  returned: always
  type: str
swarm_state:
  description: The node's swarm state after the run (inactive, pending, active, error, locked).
  returned: always
  type: str
waited:
  description: Seconds V(unlocked) waited for the engine and the node.
  returned: when state=unlocked
  type: float
changes:
  description: Swarm settings changed by an update, with their old and new values.
  returned: when state=present and the swarm existed
  type: dict
join_tokens:
  description: The worker and manager join tokens.
  returned: when return_join_tokens=true on a manager
  type: dict
  contains:
    worker:
      description: Worker join token.
      type: str
    manager:
      description: Manager join token.
      type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    ENGINE_ARGUMENT_SPEC,
    Deadline,
    EngineClient,
    EngineError,
    NotYet,
    SwarmDecisionError,
    decide_init,
    decide_join,
    init_only_drift,
    local_node_state,
    swarm_init_body,
    swarm_spec_changes,
    wait_for,
    with_swarm_port,
)


def is_raft_member(local):
    """Whether the node is a manager, also while its manager part is still starting after a restart
    (it then lists itself among the managers it knows)."""
    own = local["node_id"]
    return local["is_manager"] or bool(own and own in {m["node_id"] for m in local["remote_managers"]})


def not_back_yet(local, node):
    """What a restarted node still lacks to count as back in its swarm (None when it is back).

    node: the node as the swarm's leader sees it (inspected through this node), for a manager.
    """
    if local["state"] != "active":
        detail = ": %s" % local["error"] if local["error"] else ""
        return "its swarm state is %s%s" % (local["state"], detail)
    if not is_raft_member(local):
        return None
    if not local["is_manager"]:
        return "its manager has not started yet"
    status = (node or {}).get("ManagerStatus") or {}
    if status.get("Leader") or status.get("Reachability") == "reachable":
        return None
    return "the leader sees its manager as %s" % (status.get("Reachability") or "unknown")


class SwarmManager:
    def __init__(self, module, clock=time.monotonic, sleep=time.sleep):
        self.module = module
        self.params = module.params
        self.sleep = sleep
        self.deadline = Deadline(self.params["timeout"], clock)
        waits = self.params["state"] == "unlocked"
        self.client = EngineClient(module, wait=self.deadline if waits else 0, clock=clock, sleep=sleep)
        if waits:  # an engine can answer its version and hang on `docker info`: that too within the wait
            self.client.bounded_by(self.deadline)
        self.local = local_node_state(self.client.info())
        self.result = dict(changed=False, action="none")

    def run(self):
        state = self.params["state"]
        before = self._summary(self.local)
        try:
            if state == "present":
                self._present()
            elif state == "join":
                self._join()
            elif state == "unlocked":
                self._unlocked()
            else:
                self._absent()
        except SwarmDecisionError as exc:
            self.client.fail(str(exc), swarm_state=self.local["state"], node_id=self.local["node_id"] or "")
        if not self.module.check_mode and self.result["changed"]:
            self.local = local_node_state(self.client.info())
        after = self._expected_after(before) if self.module.check_mode else self._summary(self.local)
        self.result.update(
            node_id=self.local["node_id"] or "",
            node_addr=self.local["node_addr"] or "",
            swarm_state=after["state"],
            diff=dict(before=before, after=after),
        )
        if self.local["is_manager"] and self.local["cluster_id"]:
            self.result["cluster_id"] = self.local["cluster_id"]
        if self.params["return_join_tokens"] and self.local["is_manager"] and not self.module.check_mode:
            self.result["join_tokens"] = self.client.join_tokens()
        if state == "unlocked":
            self.result["waited"] = round(self.deadline.seconds - self.deadline.remaining(), 1)
        return self.result

    # ----------------------------------------------------------------- states

    def _present(self):
        # A manager started on a raft whose other managers are gone (an archive just restored) stays pending, its
        # control plane up without a leader: what force_new_cluster is for.
        recovering = self.params["force_new_cluster"] and self.local["state"] == "pending" and self.local["is_manager"]
        action = "update" if recovering else decide_init(self.local)
        live = None
        if action == "update" and self.params["force_new_cluster"]:
            live = self._swarm_if_led()
            if live is None:
                action = "force_new_cluster"
        if action in ("init", "force_new_cluster"):
            self._act(action)
            if not self.module.check_mode:
                self.client.post_json(
                    "docker swarm init%s" % (" --force-new-cluster" if action == "force_new_cluster" else ""),
                    "/swarm/init",
                    swarm_init_body(self.params),
                )
                if action == "force_new_cluster":
                    self._wait_until_led()
            return
        live = live or self.client.inspect_swarm()
        for drift in init_only_drift(live, self.params):
            self.module.warn("%s; it can only be set when the swarm is created." % drift)
        changes, new_spec = swarm_spec_changes(live.get("Spec"), self.params)
        self.result["changes"] = changes
        rotate = sorted(set(self.params["rotate_join_tokens"]))
        if rotate:
            self.result["rotated"] = rotate
        if changes or rotate:
            self._act("update")
            if not self.module.check_mode:
                params = dict(version=live["Version"]["Index"])
                params.update(("rotate%sToken" % kind.capitalize(), "true") for kind in rotate)
                self.client.post_json("docker swarm update", "/swarm/update", new_spec, params=params)

    def _swarm_if_led(self):
        """The swarm as its leader answers, or None when this manager's swarm has no leader (no quorum)."""
        try:
            return self.client.attempt("reading the swarm (docker swarm inspect)", self.client.api.inspect_swarm)
        except EngineError as exc:
            if exc.answered:
                return None
            self.client.fail(str(exc))

    def _wait_until_led(self):
        deadline = Deadline(self.params["timeout"], self.deadline.clock)

        def attempt():
            self.client.bounded_by(deadline)
            try:
                return self.client.attempt("reading the swarm (docker swarm inspect)", self.client.api.inspect_swarm)
            except EngineError as exc:
                raise NotYet(str(exc)) from None

        try:
            wait_for(attempt, deadline, interval=0.5, sleep=self.sleep)
        except NotYet as exc:
            self.client.fail(
                "the new cluster forced from this node's raft state has no leader within %s s (timeout): %s"
                % (self.params["timeout"], exc)
            )
        finally:
            self.client.unbounded()

    def _join(self):
        if not self.params["remote_addrs"] or not (self.params["join_token"] or self.module.check_mode):
            self.client.fail("state=join needs remote_addrs (a manager's address) and join_token")
        action = decide_join(
            self.local,
            cluster_id=self.params["cluster_id"],
            manager_node_ids=self.params["manager_node_ids"],
            remote_addrs=self.params["remote_addrs"],
            force=self.params["force"],
        )
        if action == "noop":
            return
        self._act(action)
        if self.module.check_mode:
            return
        if action == "rejoin":
            self.client.call("docker swarm leave --force", self.client.api.leave_swarm, force=True)
        body = dict(
            ListenAddr=self.params["listen_addr"],
            AdvertiseAddr=self.params["advertise_addr"] or "",
            DataPathAddr=self.params["data_path_addr"] or "",
            RemoteAddrs=[with_swarm_port(a) for a in self.params["remote_addrs"]],
            JoinToken=self.params["join_token"],
        )
        if self.params["availability"]:
            body["Availability"] = self.params["availability"]
        self.client.post_json("docker swarm join", "/swarm/join", body)
        self._wait_until_active()

    def _absent(self):
        if self.local["state"] == "inactive":
            return
        if self.local["is_manager"] and not self.params["force"]:
            raise SwarmDecisionError(
                "the node is a manager: leaving can cost the swarm its quorum. Demote it first "
                "(swarmplane.cluster.swarm_node role=worker) or set force: true"
            )
        self._act("leave")
        if not self.module.check_mode:
            self.client.call(
                "docker swarm leave",
                self.client.api.leave_swarm,
                force=self.params["force"] or self.local["state"] != "active",
            )

    def _unlocked(self):
        if self.local["state"] == "locked":
            if not self.params["unlock_key"]:
                raise SwarmDecisionError(
                    "the node is locked (autolock): its engine restarted and waits for the swarm's unlock key. "
                    "Fix: pass unlock_key (`docker swarm unlock-key` on a reachable manager shows it)"
                )
            self._act("unlock")
            if self.module.check_mode:
                return
            self.client.bounded_by(self.deadline)
            try:
                self.client.attempt(
                    "docker swarm unlock",
                    self.client._post_json,
                    "/swarm/unlock",
                    dict(UnlockKey=self.params["unlock_key"]),
                )
            except EngineError as exc:
                raise SwarmDecisionError(
                    "%s; the node stays locked. Fix: give the swarm's current unlock key (a rotation changes it: "
                    "`docker swarm unlock-key` on a reachable manager shows it)" % exc
                ) from None
        if self.local["state"] != "inactive" and not self.module.check_mode:
            self.local = self._wait_back_in_swarm()

    # ----------------------------------------------------------------- helpers

    def _act(self, action):
        self.result.update(changed=True, action=action)

    def _wait_back_in_swarm(self):
        def attempt():
            self.client.bounded_by(self.deadline)
            try:
                local = local_node_state(
                    self.client.attempt("reading the engine state (docker info)", self.client.api.info)
                )
                node = None
                if local["is_manager"]:
                    node = self.client.attempt("reading this node", self.client.node_or_none, local["node_id"])
            except EngineError as exc:
                raise NotYet(str(exc)) from None
            missing = not_back_yet(local, node)
            if missing:
                raise NotYet(missing)
            return local

        try:
            return wait_for(attempt, self.deadline, interval=0.5, sleep=self.sleep)
        except NotYet as exc:
            self.client.fail(
                "the node is not back in its swarm within %s s (timeout): %s" % (self.params["timeout"], exc),
                swarm_state=self.local["state"],
            )
        finally:
            self.client.unbounded()

    def _wait_until_active(self):
        deadline = Deadline(self.params["timeout"], self.deadline.clock)

        def attempt():
            self.client.bounded_by(deadline)
            self.local = local_node_state(self.client.info())
            if self.local["state"] == "error":
                self._fail_not_active()
            if self.local["state"] != "active":
                raise NotYet(self.local["state"])

        try:
            wait_for(attempt, deadline, interval=0.5, sleep=self.sleep)
        except NotYet:
            self._fail_not_active()
        finally:
            self.client.unbounded()

    def _fail_not_active(self):
        self.client.fail(
            "the node joined but did not become active within %s s (state %s%s)"
            % (self.params["timeout"], self.local["state"], ": %s" % self.local["error"] if self.local["error"] else "")
        )

    @staticmethod
    def _summary(local):
        return dict(
            state=local["state"],
            role="manager" if local["is_manager"] else ("worker" if local["state"] == "active" else None),
            cluster_id=local["cluster_id"],
        )

    def _expected_after(self, before):
        action = self.result["action"]
        if action == "init":
            return dict(state="active", role="manager", cluster_id="(new)")
        if action == "force_new_cluster":
            return dict(before, state="active", role="manager", managers="this node only")
        if action in ("join", "rejoin"):
            # Tokens do not say which role they grant: the engine decides at join time.
            return dict(state="active", role="(granted by the join token)", cluster_id=self.params["cluster_id"])
        if action == "unlock":
            return dict(before, state="active", role="manager")
        if action == "leave":
            return dict(state="inactive", role=None, cluster_id=None)
        after = dict(before)
        if self.result.get("changes"):
            after["settings"] = {k: v["after"] for k, v in self.result["changes"].items()}
        return after


def main():
    argument_spec = dict(
        state=dict(type="str", default="present", choices=["present", "join", "absent", "unlocked"]),
        advertise_addr=dict(type="str"),
        listen_addr=dict(type="str", default="0.0.0.0:2377"),
        data_path_addr=dict(type="str"),
        data_path_port=dict(type="int"),
        default_addr_pool=dict(type="list", elements="str"),
        subnet_size=dict(type="int"),
        force_new_cluster=dict(type="bool", default=False),
        autolock=dict(type="bool"),
        task_history_retention_limit=dict(type="int"),
        snapshot_interval=dict(type="int"),
        keep_old_snapshots=dict(type="int"),
        log_entries_for_slow_followers=dict(type="int"),
        heartbeat_tick=dict(type="int"),
        election_tick=dict(type="int"),
        dispatcher_heartbeat_period=dict(type="int"),
        node_cert_expiry=dict(type="int"),
        labels=dict(type="dict"),
        remote_addrs=dict(type="list", elements="str"),
        join_token=dict(type="str", no_log=True),
        unlock_key=dict(type="str", no_log=True),
        availability=dict(type="str", choices=["active", "pause", "drain"]),
        cluster_id=dict(type="str"),
        manager_node_ids=dict(type="list", elements="str"),
        force=dict(type="bool", default=False),
        return_join_tokens=dict(type="bool", default=False),
        rotate_join_tokens=dict(type="list", elements="str", choices=["worker", "manager"], default=[]),
        **ENGINE_ARGUMENT_SPEC,
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "join", ("remote_addrs",))],
        required_by=dict(subnet_size=("default_addr_pool",)),
    )
    module.exit_json(**SwarmManager(module).run())


if __name__ == "__main__":
    main()
