#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swarm_network
short_description: Overlay networks of a Docker Swarm, from a manager
version_added: "0.1.0"
description:
  - Creates and removes swarm-scoped networks (C(docker network create -d overlay)), from a manager.
  - Options left unset are not compared, so a network created by hand is not changed for what the task does
    not say.
  - Every property of a Docker network is fixed at creation. A difference on a network no service uses
    recreates it; on a network services use, the task fails and names the services, unless O(recreate=true),
    which detaches those services, recreates the network and attaches them again (their tasks restart).
options:
  name:
    description: Network name.
    type: str
    required: true
  state:
    description: V(present) creates (or recreates) the network; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  driver:
    description: Network driver.
    type: str
    default: overlay
  subnet:
    description: Subnet in CIDR form. Unset, the swarm's default address pool gives one.
    type: str
  gateway:
    description: Gateway address in the subnet.
    type: str
  ip_range:
    description: Range (CIDR) within the subnet that tasks get addresses from.
    type: str
  attachable:
    description: Whether standalone containers (docker run --network) can attach.
    type: bool
  internal:
    description: No route out of the network.
    type: bool
  encrypted:
    description:
      - Encrypt the VXLAN traffic between hosts (IPsec ESP). Every host needs ESP and GCM in its kernel;
        the docker_engine role reports hosts whose kernel lacks them.
    type: bool
  mtu:
    description: MTU of the network's interfaces; at most the underlay MTU minus 50 for VXLAN.
    type: int
  labels:
    description: Labels of the network.
    type: dict
  recreate:
    description: When a change needs a new network and services use it, detach them, recreate and re-attach.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for an engine API call, and for detached tasks to leave the network.
    type: int
    default: 60
extends_documentation_fragment:
  - swarmplane.cluster.engine
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author:
  - swarmplane contributors
"""

EXAMPLES = r"""
- name: Back-end network, reachable from standalone containers for debugging
  swarmplane.cluster.swarm_network:
    name: backend
    subnet: 10.30.0.0/24
    attachable: true

- name: Encrypted network (needs ESP in every host's kernel)
  swarmplane.cluster.swarm_network:
    name: secure
    encrypted: true

- name: Remove a network no service uses any more
  swarmplane.cluster.swarm_network:
    name: old
    state: absent
"""

RETURN = r"""
network:
  description: The network after the run (before it, in check mode), in the module's own terms.
  returned: when the network exists
  type: dict
changes:
  description: The properties that differ, with before and after.
  returned: always
  type: dict
recreated:
  description: Whether the network was (or, in check mode, would be) removed and created again.
  returned: always
  type: bool
services:
  description: Names of the services that use the network.
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    ENGINE_ARGUMENT_SPEC,
    EngineClient,
    SwarmDecisionError,
)

MTU_OPTION = "com.docker.network.driver.mtu"
ENCRYPTED_OPTION = "encrypted"
PROPERTIES = ("driver", "subnet", "gateway", "ip_range", "attachable", "internal", "encrypted", "mtu", "labels")


def network_view(live):
    """A live network (engine API object) in the module's own terms."""
    ipam = ((live.get("IPAM") or {}).get("Config") or [{}])[0] or {}
    options = live.get("Options") or {}
    mtu = options.get(MTU_OPTION)
    return dict(
        id=live.get("Id"),
        name=live.get("Name"),
        driver=live.get("Driver"),
        subnet=ipam.get("Subnet"),
        gateway=ipam.get("Gateway"),
        ip_range=ipam.get("IPRange"),
        attachable=bool(live.get("Attachable")),
        internal=bool(live.get("Internal")),
        encrypted=ENCRYPTED_OPTION in options,
        mtu=int(mtu) if mtu else None,
        labels=live.get("Labels") or {},
    )


def network_changes(view, wanted):
    """Properties the user set (not None) that differ from the live network: {name: {before, after}}."""
    changes = {}
    for prop in PROPERTIES:
        value = wanted.get(prop)
        if value is None:
            continue
        if prop == "labels":
            value = {str(k): str(v) for k, v in value.items()}
        if view.get(prop) != value:
            changes[prop] = dict(before=view.get(prop), after=value)
    return changes


def create_body(params):
    """The JSON body of POST /networks/create."""
    body = dict(
        Name=params["name"],
        CheckDuplicate=True,
        Driver=params["driver"],
        Scope="swarm",
        Attachable=bool(params.get("attachable")),
        Internal=bool(params.get("internal")),
        Options={},
        Labels={str(k): str(v) for k, v in (params.get("labels") or {}).items()},
    )
    if params.get("encrypted"):
        body["Options"][ENCRYPTED_OPTION] = ""
    if params.get("mtu"):
        body["Options"][MTU_OPTION] = str(params["mtu"])
    if params.get("subnet"):
        config = dict(Subnet=params["subnet"])
        if params.get("gateway"):
            config["Gateway"] = params["gateway"]
        if params.get("ip_range"):
            config["IPRange"] = params["ip_range"]
        body["IPAM"] = dict(Driver="default", Config=[config])
    return body


def service_network_targets(service):
    spec = service.get("Spec") or {}
    attachments = ((spec.get("TaskTemplate") or {}).get("Networks") or []) + (spec.get("Networks") or [])
    return [a.get("Target") for a in attachments]


def services_using(services, network_id, name):
    return sorted(s["Spec"]["Name"] for s in services if {network_id, name} & set(service_network_targets(s)))


def without_network(spec, network_id, name):
    """A copy of a service spec with its attachment to the network removed, and the attachment itself."""
    import copy

    spec = copy.deepcopy(spec)
    task = spec.setdefault("TaskTemplate", {})
    kept, removed = [], None
    for attachment in task.get("Networks") or []:
        if attachment.get("Target") in (network_id, name):
            removed = attachment
        else:
            kept.append(attachment)
    task["Networks"] = kept
    legacy = []
    for attachment in spec.get("Networks") or []:  # the deprecated place, still read by the engine
        if attachment.get("Target") in (network_id, name):
            removed = removed or attachment
        else:
            legacy.append(attachment)
    if "Networks" in spec:
        spec["Networks"] = legacy
    return spec, removed


class NetworkManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = EngineClient(module)
        self.client.require_manager("network %s: swarm_network" % self.params["name"])

    def find(self):
        for network in self.client.call("listing networks", self.client.api.networks, names=[self.params["name"]]):
            if network.get("Name") == self.params["name"]:
                return self.client.call("reading the network", self.client.api.inspect_network, network["Id"])
        return None

    def services(self):
        return self.client.call("listing services", self.client.api.services)

    def run(self):
        live = self.find()
        view = network_view(live) if live else None
        users = services_using(self.services(), view["id"], view["name"]) if view else []
        result = dict(changed=False, changes={}, recreated=False, services=users)
        try:
            if self.params["state"] == "absent":
                return self._absent(view, users, result)
            return self._present(view, users, result)
        except SwarmDecisionError as exc:
            self.client.fail("network %s: %s" % (self.params["name"], exc), services=users)

    def _absent(self, view, users, result):
        if view is None:
            return dict(result, diff=dict(before={}, after={}))
        if users:
            raise SwarmDecisionError("services use it: %s. Remove them (or their attachment) first" % ", ".join(users))
        if not self.module.check_mode:
            self.client.call("removing the network", self.client.api.remove_network, view["id"])
        return dict(result, changed=True, network=view, diff=dict(before=view, after={}))

    def _present(self, view, users, result):
        if view is None:
            if not self.module.check_mode:
                self.client.post_json("creating the network", "/networks/create", create_body(self.params))
                view = network_view(self.find())
            return dict(result, changed=True, network=view or {}, diff=dict(before={}, after=self._wanted()))
        changes = network_changes(view, self.params)
        result.update(changes=changes, network=view)
        if not changes:
            return dict(result, diff=dict(before=view, after=view))
        if users and not self.params["recreate"]:
            raise SwarmDecisionError(
                "%s cannot change on an existing network, and services use it: %s. Set recreate: true to "
                "detach them, recreate the network and attach them again (their tasks restart)"
                % (", ".join(sorted(changes)), ", ".join(users))
            )
        before, after = view, dict(view, **{k: v["after"] for k, v in changes.items()})
        if not self.module.check_mode:
            result["network"] = self._recreate(view, users)
        return dict(result, changed=True, recreated=True, diff=dict(before=before, after=after))

    def _wanted(self):
        return dict({p: self.params[p] for p in PROPERTIES if self.params.get(p) is not None}, name=self.params["name"])

    def _update_service(self, service_id, spec, version):
        self.client.post_json(
            "updating service %s" % spec.get("Name"),
            "/services/%s/update" % service_id,
            spec,
            params=dict(version=version),
        )

    def _recreate(self, view, users):
        detached = []
        for service in self.services():
            if service["Spec"]["Name"] not in users:
                continue
            spec, attachment = without_network(service["Spec"], view["id"], view["name"])
            self._update_service(service["ID"], spec, service["Version"]["Index"])
            detached.append((service["ID"], attachment))
        self._remove_when_free(view["id"])
        self.client.post_json(
            "creating the network", "/networks/create", create_body(dict(self._wanted_for_create(view)))
        )
        new = network_view(self.find())
        for service_id, attachment in detached:
            service = self.client.call("reading a service", self.client.api.inspect_service, service_id)
            spec = service["Spec"]
            spec.setdefault("TaskTemplate", {}).setdefault("Networks", []).append(
                dict(attachment or {}, Target=new["id"])
            )
            self._update_service(service_id, spec, service["Version"]["Index"])
        return new

    def _wanted_for_create(self, view):
        """The new network: the live properties, overridden by what the task sets."""
        merged = {p: view.get(p) for p in PROPERTIES}
        merged.update({p: self.params[p] for p in PROPERTIES if self.params.get(p) is not None})
        merged["name"] = self.params["name"]
        return merged

    def _remove_when_free(self, network_id):
        # Detached tasks leave the network as they restart; until then the engine refuses to remove it.
        deadline = time.monotonic() + self.params["timeout"]
        while True:
            try:
                self.client.api.remove_network(network_id)
                return
            except Exception as exc:  # the engine's "has active endpoints" until the tasks are gone
                if time.monotonic() > deadline:
                    self.client.fail(
                        "the network still had attached tasks after %ss: %s" % (self.params["timeout"], exc)
                    )
                time.sleep(1)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            driver=dict(type="str", default="overlay"),
            subnet=dict(type="str"),
            gateway=dict(type="str"),
            ip_range=dict(type="str"),
            attachable=dict(type="bool"),
            internal=dict(type="bool"),
            encrypted=dict(type="bool"),
            mtu=dict(type="int"),
            labels=dict(type="dict"),
            recreate=dict(type="bool", default=False),
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
        required_by=dict(gateway=("subnet",), ip_range=("subnet",)),
    )
    module.exit_json(**NetworkManager(module).run())


if __name__ == "__main__":
    main()
