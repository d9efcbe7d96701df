# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What swarm_secret and swarm_config share (plugins/module_utils/swarm_versioned.py): options, naming, pruning."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  name:
    description: Logical name of the secret or config; its versions are named after it.
    type: str
    required: true
  data_src:
    description: Path of a file on the managed host whose content is the value. Mutually exclusive with O(data).
    type: path
  data_is_b64:
    description: O(data) is base64-encoded; the object holds the decoded bytes.
    type: bool
    default: false
  labels:
    description:
      - Labels of the current version. Unset, the live labels are kept.
      - The labels C(swarmplane.name) and C(swarmplane.hmac) are always set by the module.
    type: dict
  state:
    description:
      - V(present) makes sure an object holds the value (O(data) or O(data_src) is required).
      - V(absent) removes every version of O(name) that nothing needs, and fails naming the versions still
        needed, by a service or by a service's previous spec (its rollback target; unless O(force=true)).
    type: str
    choices: [present, absent]
    default: present
  versioned:
    description:
      - Each value is its own object C(<name>_<digest>); false names the object O(name) exactly.
      - With V(false), a changed value fails naming the services while services use the object; otherwise the
        object is removed and created again, unless a service's rollback target uses it (then it fails, unless
        O(force=true)).
    type: bool
    default: true
  keep_versions:
    description:
      - How many old versions to keep besides the current one. Older versions are removed unless a service or a
        service's previous spec (its rollback target) uses them.
      - Versions named by releases before the keyed digest (C(<name>_<sha256 prefix>), label C(swarmplane.sha256))
        are not counted; they are removed as soon as nothing needs them, since their names tell a hash of the value.
    type: int
    default: 2
  force:
    description:
      - With O(state=absent) (or a replaced O(versioned=false) object), also remove a version that only a
        service's previous spec uses. The engine allows it, and a later C(docker service rollback) of that
        service then fails. Versions a service's current spec uses are never removed.
    type: bool
    default: false
attributes:
  platform:
    platforms: posix
  check_mode:
    support: full
    details: Returns the name a real run would create, also on a swarm without a naming key yet.
  diff_mode:
    support: full
    details: Before and after show names, keyed digests and labels, never the data nor a plain hash of it.
notes:
  - Run it once per swarm, on a manager (C(run_once) on the managers group).
  - Versions are named C(<name>_<first 12 hex of the digest>), the digest being an HMAC-SHA256 of the value (with
    the kind and the name) under the swarm's naming key, so names and results change with the value but tell
    nothing about it, and two objects holding the same value get unrelated names.
  - The naming key is the swarm config C(swarmplane-version-key) (a secret's data cannot be read back, so a config
    holds it; reading it takes manager access, which can read every secret anyway). The first run creates it from
    the manager join token, one-way, so a dry run on a new swarm returns the names the real run creates; it is
    never derived again, so rotating the join tokens changes no name. Do not remove it, nor print it; without it
    the next run creates a new key and every value moves to a new version.
  - A version named by an earlier release (C(<name>_<sha256 prefix>)) is never reused. The next run creates the
    keyed version of the same value (a rotation; the services move to it on their next update, their tasks
    restart); the old one stays while a service or a rollback target uses it.
"""
