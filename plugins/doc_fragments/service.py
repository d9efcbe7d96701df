# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of one swarm service (SERVICE_OPTIONS in module_utils/swarm_service_manager.py): the top-level options
of swarm_service (DOCUMENTATION) and the suboptions of swarm_services' `services` list (BATCH); both modules also
take `planned` (PLANNED_OPTION)."""

from __future__ import annotations

import textwrap

# One service's options, written once at the indentation of a top-level option.
_SERVICE_OPTIONS = r"""
name:
  description: Service name.
  type: str
  required: true
state:
  description: V(present) creates or updates; V(absent) removes.
  type: str
  choices: [present, absent]
  default: present
image:
  description: Image (tag or digest). Required to create a service.
  type: str
command:
  description: Replaces the image's entrypoint.
  type: list
  elements: str
args:
  description: Arguments of the command.
  type: list
  elements: str
mode:
  description:
    - V(replicated) (C(replicas) tasks) or V(global) (one task per eligible node).
    - The engine cannot change the mode of a service; a change removes the service and creates it again
      (C(rebuilt)). It is refused before anything is removed when no node can run the new service or its
      image is missing from its registry. If the new service then fails, the previous one is created again
      from its saved spec (ports, networks, secrets and configs included) and waited for; the outage is
      reported. The saved spec stays in C(/var/lib/swarmplane/saved-services/) on the manager until the
      service (new or previous) runs, and the error says how to restore it if that failed; with C(wait=false)
      it stays (C(saved_spec)).
  type: str
  choices: [replicated, global]
replicas:
  description: Number of tasks of a replicated service.
  type: int
publish:
  description: Published ports.
  type: list
  elements: dict
  suboptions:
    target:
      description: Port inside the container.
      type: int
      required: true
    published:
      description: Port on the nodes. Unset, the swarm picks one (ingress mode).
      type: int
    protocol:
      description: Protocol.
      type: str
      choices: [tcp, udp]
      default: tcp
    mode:
      description:
        - V(ingress) publishes on every node through the routing mesh (needs IPVS in the kernel);
          V(host) publishes on the nodes that run a task.
      type: str
      choices: [ingress, host]
      default: ingress
networks:
  description: Networks to attach, as names or as dicts with name and aliases.
  type: list
  elements: raw
env:
  description:
    - Environment, as a dict or a list of C(KEY=value).
    - Sensitive. The values never appear in results, diffs or errors, at any verbosity (C(KEY=<hidden>),
      C(KEY=<hidden, changed>) where the value changes); the key names do.
  type: raw
labels:
  description: Service labels.
  type: dict
container_labels:
  description: Labels of the task containers.
  type: dict
constraints:
  description:
    - Placement constraints, for example C(node.role==worker).
    - A global service wants one task on every node that is Ready, availability active, and matches these
      constraints and the service's platforms.
  type: list
  elements: str
placement_preferences:
  description: Spread preferences, as dicts with a C(spread) label.
  type: list
  elements: dict
max_replicas_per_node:
  description: At most this many tasks of the service on one node.
  type: int
limits:
  description: Resource limits, a dict with C(cpus) (number) and C(memory) (bytes or like C(64M)).
  type: dict
reservations:
  description: Resource reservations, a dict with C(cpus) and C(memory).
  type: dict
restart_policy:
  description: Dict with C(condition) (none, on-failure, any), C(delay), C(max_attempts), C(window).
  type: dict
update_config:
  description:
    - Dict with C(parallelism), C(delay), C(failure_action) (pause, continue, rollback), C(monitor),
      C(max_failure_ratio), C(order) (stop-first, start-first). Keys left out keep their live values.
    - With C(failure_action=rollback) the engine rolls a failed update back by itself; the module waits for
      that rollback and reports it (C(outcome) C(rolled back)) instead of sending its own.
  type: dict
rollback_config:
  description: Same keys as C(update_config), for rollbacks.
  type: dict
healthcheck:
  description: Dict with C(test) (string for a shell command, or a list), C(interval), C(timeout), C(retries), C(start_period).
  type: dict
mounts:
  description: Mounts, as dicts with C(source), C(target), C(type) (volume, bind, tmpfs) and C(readonly).
  type: list
  elements: dict
secrets:
  description: Secrets, as dicts with C(source) (the secret's name), C(target), C(uid), C(gid), C(mode).
  type: list
  elements: dict
configs:
  description: Configs, as dicts with C(source), C(target), C(uid), C(gid), C(mode).
  type: list
  elements: dict
endpoint_mode:
  description: V(vip) (a virtual IP, needs IPVS) or V(dnsrr) (DNS round robin).
  type: str
  choices: [vip, dnsrr]
hostname:
  description: Container host name (Go template allowed, like C({{.Task.Name}})).
  type: str
user:
  description: User the container runs as.
  type: str
workdir:
  description: Working directory of the container.
  type: str
stop_grace_period:
  description: Time (seconds or like C(10s)) between SIGTERM and SIGKILL.
  type: raw
wait:
  description:
    - Wait until every desired task runs (or a failure is certain). A replicated service wants C(replicas)
      tasks; a global one a task on every eligible node (see C(constraints)). A task started by the change
      counts once it has run for the service's update monitor (C(update_config.monitor), 5 s when unset, at
      most 30 s), so an image that starts and exits a moment later never counts.
    - A failure is certain when an image cannot be pulled, the engine pauses the update, or a task failed 3
      times since the change (during a rebuild, once; the previous service is gone until it is restored).
  type: bool
  default: true
wait_timeout:
  description: Seconds to wait for convergence (and again for a rollback, if one is needed).
  type: int
  default: 120
rollback_on_failure:
  description:
    - Roll a failed update back to the previous spec (the run still fails and says so). C(rolled_back) is
      true only once the previous spec runs again.
  type: bool
  default: true
"""

_PLANNED_OPTION = r"""
planned:
  description:
    - Networks, secrets and configs (by their swarm names) that earlier tasks of the same check-mode run would
      create. In check mode a service may use them, and the plan shows them as created by the run; outside
      check mode this is ignored and every object a service uses must exist.
  type: dict
  suboptions:
    networks:
      description: Network names.
      type: list
      elements: str
      default: []
    secrets:
      description: Secret names (versioned names, as swarm_secret returns them).
      type: list
      elements: str
      default: []
    configs:
      description: Config names (versioned names, as swarm_config returns them).
      type: list
      elements: str
      default: []
"""

_BATCH_SERVICES = r"""
services:
  description:
    - The services, each a dict of the options below (the options of M(swarmplane.cluster.swarm_service)).
  type: list
  elements: dict
  required: true
  suboptions:
"""


def _indent(text, spaces):
    return textwrap.indent(text.strip("\n") + "\n", " " * spaces)


# The fragments are composed, not literals, so ansible-test's yamllint (which reads string literals only) leaves them
# alone (annotated assignments); tests/unit/test_plugin_docs.py lints the composed YAML, and ansible-doc and
# validate-modules check the documentation of both modules built from them.
class ModuleDocFragment:
    # swarm_service: one service's options at the top level.
    DOCUMENTATION: str = "options:\n" + _indent(_SERVICE_OPTIONS, 2) + _indent(_PLANNED_OPTION, 2)

    # swarm_services: the same options as suboptions of `services` (extends_documentation_fragment
    # swarmplane.cluster.service.batch).
    BATCH: str = "options:\n" + _indent(_BATCH_SERVICES, 2) + _indent(_SERVICE_OPTIONS, 6) + _indent(_PLANNED_OPTION, 2)
