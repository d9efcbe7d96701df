#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swarm_config
short_description: Versioned Docker Swarm configs, from a manager
version_added: "0.1.0"
description:
  - Creates, rotates and removes swarm configs (C(docker config create), C(docker config rm)), from a manager.
  - A swarm config cannot change once created and cannot be removed while a service uses it. With
    O(versioned=true) (the default) each content is its own config, named C(<name>_<first 12 hex of the sha256>)
    and labelled C(swarmplane.name) and C(swarmplane.sha256). New content creates a new version next to the old
    ones (rotation); point the services at the returned RV(name) and their tasks pick it up on the service
    update. Unchanged content finds its version by the label and changes nothing.
  - Old versions beyond O(keep_versions) that no service uses (nor a service's previous spec, which a rollback
    returns to) are removed, on every run.
  - With O(versioned=false) the config is named O(name) exactly. Changed content on a config services use
    fails and names the services; on an unused config it removes the config and creates it again.
  - Content is compared by the sha256 in the label; a config without the label (made by hand) is compared by
    the hash of its data.
options:
  name:
    description: Logical name of the config; versions are named after it.
    type: str
    required: true
  data:
    description:
      - The config's content. Mutually exclusive with O(data_src).
      - Binary content is best given base64-encoded, with O(data_is_b64=true).
    type: str
  data_src:
    description: Path of a file on the managed host whose content is the config's content.
    type: path
  data_is_b64:
    description: O(data) is base64-encoded; the config holds the decoded bytes.
    type: bool
    default: false
  labels:
    description:
      - Labels of the config (of its current version). Unset, the live labels are kept.
      - The labels C(swarmplane.name) and C(swarmplane.sha256) are always set by the module.
    type: dict
  state:
    description:
      - V(present) makes sure a config holds the content (O(data) or O(data_src) is required).
      - V(absent) removes every version of O(name) that no service uses, and fails naming the versions
        that services still use.
    type: str
    choices: [present, absent]
    default: present
  versioned:
    description: Each content is its own config C(<name>_<hash>); false names the config O(name) exactly.
    type: bool
    default: true
  keep_versions:
    description: How many old versions to keep besides the current one. Older versions are removed unless a service uses them.
    type: int
    default: 2
extends_documentation_fragment:
  - swarmplane.cluster.engine
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Before and after show config names, hashes and labels, not the content.
notes:
  - Run it once per swarm, on a manager (C(run_once) on the managers group).
author:
  - swarmplane contributors
seealso:
  - module: swarmplane.cluster.swarm_secret
"""

EXAMPLES = r"""
- name: Nginx configuration, a new version whenever it changes
  swarmplane.cluster.swarm_config:
    name: nginx_conf
    data: "{{ lookup('template', 'nginx.conf.j2') }}"
    labels:
      app: web
  run_once: true
  register: nginx_conf

# The stack file template names the current version:
#   configs:
#     nginx_conf:
#       external: true
#       name: "{{ nginx_conf.name }}"
- name: Deploy the stack; its tasks restart with the new version when the content changed
  ansible.builtin.command: docker stack deploy -c /srv/web/stack.yml web
  run_once: true
  when: nginx_conf.changed

- name: A config under a fixed name, for content that never changes while in use
  swarmplane.cluster.swarm_config:
    name: motd
    data_src: /etc/motd
    versioned: false
  run_once: true

- name: Remove every unused version
  swarmplane.cluster.swarm_config:
    name: old_conf
    state: absent
  run_once: true
"""

RETURN = r"""
name:
  description: Name of the swarm config that holds the content; services reference this name.
  returned: state=present
  type: str
  sample: nginx_conf_9f86d081884c
id:
  description: ID of that config (null in check mode when it would be created).
  returned: state=present
  type: str
sha256:
  description: sha256 hex digest of the content.
  returned: state=present
  type: str
versions:
  description:
    - Names of the versions left after the run, the current one first, then the others newest first.
    - With state=absent, the versions that services still use.
  returned: always
  type: list
  elements: str
pruned:
  description: Names of the versions removed (would be removed, in check mode).
  returned: always
  type: list
  elements: str
services:
  description: Names of the services that use any version of the config.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import ENGINE_ARGUMENT_SPEC
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_versioned import (
    CONFIG,
    VersionedObjectManager,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            data=dict(type="str"),
            data_src=dict(type="path"),
            data_is_b64=dict(type="bool", default=False),
            labels=dict(type="dict"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            versioned=dict(type="bool", default=True),
            keep_versions=dict(type="int", default=2),
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
        mutually_exclusive=[("data", "data_src")],
        required_if=[("state", "present", ("data", "data_src"), True)],
    )
    module.exit_json(**VersionedObjectManager(module, CONFIG).run())


if __name__ == "__main__":
    main()
