#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ipvs_info
short_description: The kernel's IPVS table (virtual services, real servers, weights, connections), also of a namespace
version_added: "0.2.0"
description:
  - Reads the IPVS table of the host, or of a network namespace such as Docker's routing mesh sandbox
    C(/var/run/docker/netns/ingress_sbox) - every virtual service with its scheduler and persistence, and every real
    server with its forwarding method, weight, and active and inactive connections.
  - Read-only; never loads a kernel module. On a kernel without IPVS, or with O(netns) missing, it fails, unless
    O(fail_on_unavailable=false), which returns RV(available=false) and the reason instead (what a report wants).
notes:
  - Reads over generic netlink with Python's standard library (see the ipvs module's notes); RV(rules) is the same
    table in C(ipvsadm -S -n) syntax.
options:
  netns:
    description: A network namespace name (C(ip netns)) or namespace file to read instead of the host's table.
    type: str
  stats:
    description: Also return traffic counters (connections, packets and bytes) per service and real server.
    type: bool
    default: false
  fail_on_unavailable:
    description: Fail when the kernel has no IPVS or the namespace does not exist; when false, report it.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  platform:
    platforms: posix
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
author:
  - swarmplane contributors (@swarmplane)
"""

EXAMPLES = r"""
- name: Read the routing mesh of a swarm node
  swarmplane.cluster.ipvs_info:
    netns: /var/run/docker/netns/ingress_sbox
    fail_on_unavailable: false
  register: mesh

- name: Show it
  ansible.builtin.debug:
    msg: "{{ mesh.rules if mesh.available else mesh.reason }}"
"""

RETURN = r"""
available:
  description: Whether the table could be read (the kernel has IPVS and the namespace exists).
  returned: always
  type: bool
reason:
  description: Why the table could not be read.
  returned: when available is false
  type: str
  sample: "the kernel has no IPVS (6.18.44): the ip_vs module is not loaded; /lib/modules/6.18.44 does not exist"
services:
  description: The virtual services, each with its real servers.
  returned: when available
  type: list
  elements: dict
  sample:
    - key: fwmark 256
      fwmark: 256
      family: ipv4
      protocol: null
      address: null
      port: null
      scheduler: rr
      scheduler_flags: []
      persistence_timeout: 0
      persistence_netmask: 255.255.255.255
      real_servers:
        - {address: 10.0.0.5, port: 0, forwarding: nat, weight: 1, u_threshold: 0, l_threshold: 0,
           active_connections: 0, inactive_connections: 2, persistent_connections: 0}
rules:
  description: The table in C(ipvsadm -S -n) syntax.
  returned: when available
  type: list
  elements: str
  sample: ["-A -f 256 -s rr", "-a -f 256 -r 10.0.0.5:0 -m -w 1"]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.ipvs import (
    IpvsError,
    IpvsKernel,
    IpvsUnavailable,
    real_server_key,
    render_rules,
    service_key,
)
from ansible_collections.swarmplane.cluster.plugins.module_utils.netns import NetnsError, netns_path


def table_view(services):
    """The table as the module returns it: keys added, the kernel's private flag bits dropped (stats are there only
    when the kernel was asked for them)."""
    view = []
    for service in services:
        item = {k: v for k, v in service.items() if k != "flags"}
        item["key"] = service_key(service)
        item["real_servers"] = sorted(service.get("real_servers") or [], key=real_server_key)
        view.append(item)
    return sorted(view, key=lambda s: s["key"])


def unavailable_reason():
    release = os.uname().release
    if not os.path.isdir("/lib/modules/%s" % release):
        where = "/lib/modules/%s does not exist (a container uses its host's kernel)" % release
    else:
        where = "run `modprobe ip_vs`, or use a kernel built with CONFIG_IP_VS"
    return "the kernel has no IPVS (%s): the ip_vs module is not loaded; %s" % (release, where)


def read_table(module):
    try:
        with IpvsKernel(netns_path(module.params["netns"])) as kernel:
            services = kernel.services(stats=module.params["stats"])
    except IpvsUnavailable:
        return None, unavailable_reason()
    except NetnsError as exc:
        return None, str(exc)
    except (IpvsError, OSError) as exc:
        module.fail_json(msg="reading the IPVS table failed: %s" % exc)
    return services, None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            netns=dict(type="str"),
            stats=dict(type="bool", default=False),
            fail_on_unavailable=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    services, reason = read_table(module)
    if reason:
        if module.params["fail_on_unavailable"]:
            module.fail_json(msg=reason, available=False, reason=reason)
        module.exit_json(changed=False, available=False, reason=reason)
    module.exit_json(
        changed=False,
        available=True,
        services=table_view(services),
        rules=render_rules(services),
    )


if __name__ == "__main__":
    main()
