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
    O(versioned=true) (the default) each content is its own config, named after a keyed digest of the content and
    labelled C(swarmplane.name) and C(swarmplane.hmac). New content creates a new version next to the old ones
    (rotation); point the services at the returned RV(name) and their tasks pick it up on the service update.
    Unchanged content finds its version and changes nothing.
  - Old versions beyond O(keep_versions) that no service uses (nor a service's previous spec, which a rollback
    returns to) are removed, on every run.
  - Content is compared with the config's own data (the engine returns a config's data), so a config made by hand
    with the same content is adopted by labelling it.
options:
  data:
    description:
      - The config's content. Mutually exclusive with O(data_src).
      - Binary content is best given base64-encoded, with O(data_is_b64=true).
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - swarmplane.cluster.versioned
  - swarmplane.cluster.engine
author:
  - swarmplane contributors (@swarmplane)
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
  sample: nginx_conf_0b9f4e1a7c23
id:
  description: ID of that config (null in check mode when it would be created).
  returned: state=present
  type: str
hmac:
  description:
    - HMAC-SHA256 (hex) of the content under the swarm's naming key; the version name ends with its first 12 hex.
    - Tells nothing about the content without the key.
  returned: state=present
  type: str
versions:
  description:
    - Names of the versions left after the run, the current one first, then the others newest first.
    - With state=absent, the versions still needed, by a service or by a service's rollback target.
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
            force=dict(type="bool", default=False),
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
        mutually_exclusive=[("data", "data_src")],
        required_if=[("state", "present", ("data", "data_src"), True)],
    )
    module.exit_json(**VersionedObjectManager(module, CONFIG).run())


if __name__ == "__main__":
    main()
