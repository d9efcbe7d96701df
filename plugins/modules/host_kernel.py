#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_kernel
short_description: Load the kernel modules and set the sysctls that swarm networking needs, and say what is missing
version_added: "0.1.0"
description:
  - For each kernel module, finds whether it is loaded or built in, loads it with C(modprobe) when it can, and
    otherwise reports it as missing with the reason and what stops working without it (a warning per module).
  - Sets sysctls that differ from the wanted value; one that cannot be set (read-only C(/proc/sys) in a
    container, a key that needs a missing module) is reported, not failed.
  - With O(persist=true) writes C(/etc/modules-load.d) and C(/etc/sysctl.d) files so the settings survive a reboot.
  - Never fails for a missing feature, since a host can run a swarm without IPVS (only without the routing
    mesh). Use RV(missing_modules) to decide.
options:
  modules:
    description: Kernel modules swarm networking uses.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Module name as C(modprobe) takes it.
        type: str
        required: true
      purpose:
        description: What stops working without it; said in the warning.
        type: str
        default: ""
      probe_path:
        description: A path whose existence proves the feature is in the kernel (for built-in modules that leave no trace in /sys/module).
        type: str
  sysctls:
    description: Kernel parameters and their wanted values.
    type: dict
    default: {}
  persist:
    description: Write the module list and sysctls to files read at boot.
    type: bool
    default: true
  modules_load_file:
    description: File listing modules to load at boot.
    type: path
    default: /etc/modules-load.d/swarmplane.conf
  sysctl_file:
    description: File with the sysctls to apply at boot.
    type: path
    default: /etc/sysctl.d/90-swarmplane.conf
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  platform:
    platforms: posix
  check_mode:
    support: full
  diff_mode:
    support: full
author:
  - swarmplane contributors (@swarmplane)
"""

EXAMPLES = r"""
- name: Kernel prerequisites of swarm networking
  swarmplane.cluster.host_kernel:
    modules:
      - name: ip_vs
        purpose: the routing mesh (ingress-published ports) and service virtual IPs
        probe_path: /proc/net/ip_vs
      - name: vxlan
        purpose: overlay networks between hosts
    sysctls:
      net.ipv4.ip_forward: 1
  register: kernel
"""

RETURN = r"""
modules:
  description: Each module's state (loaded, builtin, missing) and, when missing, why.
  returned: always
  type: dict
  sample: {"ip_vs": {"state": "missing", "reason": "not in /lib/modules/6.1.0-28-amd64"}}
missing_modules:
  description: Names of the modules that are neither loaded nor loadable.
  returned: always
  type: list
  elements: str
sysctls:
  description: Each sysctl's value and state (ok, set, missing, read_only).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.kernel import KERNEL_OPTIONS, KernelManager


def main():
    module = AnsibleModule(argument_spec=KERNEL_OPTIONS, supports_check_mode=True)
    module.exit_json(**KernelManager(module).run(module.params))


if __name__ == "__main__":
    main()
