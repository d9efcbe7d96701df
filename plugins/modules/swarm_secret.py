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
    O(versioned=true) (the default) each value is its own secret, named C(<name>_<first 12 hex of the sha256>)
    and labelled C(swarmplane.name) and C(swarmplane.sha256). A new value creates a new version next to the old
    ones (rotation); point the services at the returned RV(name) and their tasks pick it up on the service
    update. An unchanged value finds its version by the label and changes nothing.
  - Old versions beyond O(keep_versions) that no service uses (nor a service's previous spec, which a rollback
    returns to) are removed, on every run.
  - With O(versioned=false) the secret is named O(name) exactly. A changed value on a secret services use
    fails and names the services; on an unused secret it removes the secret and creates it again.
  - The engine never returns secret data, so the value is compared by the sha256 in the label. The hash is
    returned and shown in diffs; the data never is.
options:
  name:
    description: Logical name of the secret; versions are named after it.
    type: str
    required: true
  data:
    description:
      - The secret's value. Mutually exclusive with O(data_src).
      - Binary values are best given base64-encoded, with O(data_is_b64=true).
    type: str
  data_src:
    description: Path of a file on the managed host whose content is the secret's value.
    type: path
  data_is_b64:
    description: O(data) is base64-encoded; the secret holds the decoded bytes.
    type: bool
    default: false
  labels:
    description:
      - Labels of the secret (of its current version). Unset, the live labels are kept.
      - The labels C(swarmplane.name) and C(swarmplane.sha256) are always set by the module.
    type: dict
  state:
    description:
      - V(present) makes sure a secret holds the value (O(data) or O(data_src) is required).
      - V(absent) removes every version of O(name) that no service uses, and fails naming the versions
        that services still use.
    type: str
    choices: [present, absent]
    default: present
  versioned:
    description: Each value is its own secret C(<name>_<hash>); false names the secret O(name) exactly.
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
    details: Before and after show secret names, hashes and labels, never the data.
notes:
  - Run it once per swarm, on a manager (C(run_once) on the managers group).
author:
  - swarmplane contributors
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
"""

RETURN = r"""
name:
  description: Name of the swarm secret that holds the value; services reference this name.
  returned: state=present
  type: str
  sample: db_password_9f86d081884c
id:
  description: ID of that secret (null in check mode when it would be created).
  returned: state=present
  type: str
sha256:
  description: sha256 hex digest of the value (the hash, not the secret).
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
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
        mutually_exclusive=[("data", "data_src")],
        required_if=[("state", "present", ("data", "data_src"), True)],
    )
    module.exit_json(**VersionedObjectManager(module, SECRET).run())


if __name__ == "__main__":
    main()
