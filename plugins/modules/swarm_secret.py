#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swarm_secret
short_description: Versioned Docker Swarm secrets, from a manager
version_added: "0.1.0"
description:
  - Creates, rotates and removes swarm secrets (C(docker secret create), C(docker secret rm)), from a manager.
  - A swarm secret cannot change once created and cannot be removed while a service uses it. With
    O(versioned=true) (the default) each value is its own secret, named after a keyed digest of the value and
    labelled C(swarmplane.name) and C(swarmplane.hmac). A new value creates a new version next to the old ones
    (rotation); point the services at the returned RV(name) and their tasks pick it up on the service update.
    An unchanged value finds its version by the label and changes nothing.
  - Old versions beyond O(keep_versions) that no service uses (nor a service's previous spec, which a rollback
    returns to) are removed, on every run.
  - The engine never returns secret data, so the value is compared through the digest in the label. Neither the
    data nor a plain hash of it is ever returned or shown.
options:
  data:
    description:
      - The secret's value. Mutually exclusive with O(data_src).
      - Binary values are best given base64-encoded, with O(data_is_b64=true).
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - swarmplane.cluster.versioned
  - swarmplane.cluster.engine
author:
  - swarmplane contributors (@swarmplane)
seealso:
  - module: swarmplane.cluster.swarm_config
"""

EXAMPLES = r"""
- name: Database password, a new version whenever it changes
  swarmplane.cluster.swarm_secret:
    name: db_password
    data: "{{ vault_db_password }}"
  run_once: true
  register: db_password

# The stack file template names the current version, mounted under the logical name:
#   secrets:
#     db_password:
#       external: true
#       name: "{{ db_password.name }}"
- name: Deploy the stack; its tasks restart with the new version when the value changed
  ansible.builtin.command: docker stack deploy -c /srv/app/stack.yml app
  run_once: true
  when: db_password.changed

- name: TLS key from a file on the manager
  swarmplane.cluster.swarm_secret:
    name: tls_key
    data_src: /etc/ssl/private/app.key
    labels:
      app: web
  run_once: true

- name: Binary keytab, kept with one old version only
  swarmplane.cluster.swarm_secret:
    name: keytab
    data: "{{ lookup('file', 'app.keytab.b64') }}"
    data_is_b64: true
    keep_versions: 1
  run_once: true

- name: Remove every unused version
  swarmplane.cluster.swarm_secret:
    name: old_token
    state: absent
  run_once: true

- name: Remove also the versions only a rollback would return to (docker service rollback then fails)
  swarmplane.cluster.swarm_secret:
    name: old_token
    state: absent
    force: true
  run_once: true
"""

RETURN = r"""
name:
  description: Name of the swarm secret that holds the value; services reference this name.
  returned: state=present
  type: str
  sample: db_password_5e1a0c9b77d2
id:
  description: ID of that secret (null in check mode when it would be created).
  returned: state=present
  type: str
hmac:
  description:
    - HMAC-SHA256 (hex) of the value under the swarm's naming key; the version name ends with its first 12 hex.
    - Tells nothing about the value without the key.
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
  description: Names of the services that use any version of the secret.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import ENGINE_ARGUMENT_SPEC
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_versioned import (
    SECRET,
    VersionedObjectManager,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            data=dict(type="str", no_log=True),
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
    module.exit_json(**VersionedObjectManager(module, SECRET).run())


if __name__ == "__main__":
    main()
