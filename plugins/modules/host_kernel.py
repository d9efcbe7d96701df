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

import os

from ansible.module_utils.basic import AnsibleModule


def sysctl_path(name):
    if "." not in name:  # already in path form: net/ipv4/ip_forward
        return os.path.join("/proc/sys", name.lstrip("/"))
    # In a dotted sysctl name a "/" stands for a "." (net.ipv4.conf.eth0/100.forwarding), as sysctl(8) reads it.
    return os.path.join("/proc/sys", name.replace("/", "\0").replace(".", "/").replace("\0", "."))


def normalize_sysctl(value):
    return " ".join(str(value).split())


def render_modules_load(names):
    return "# Managed by swarmplane: kernel modules swarm networking needs.\n" + "".join(
        "%s\n" % n for n in sorted(names)
    )


def render_sysctl_file(sysctls):
    lines = ["# Managed by swarmplane: kernel parameters swarm networking needs."]
    lines += ["%s = %s" % (k, normalize_sysctl(v)) for k, v in sorted(sysctls.items())]
    return "\n".join(lines) + "\n"


def missing_modules_warning(hostname, missing, report):
    """One warning per host: the missing modules grouped by reason, then what stops working."""
    by_reason = {}
    for spec in missing:
        by_reason.setdefault(report[spec["name"]]["reason"], []).append(spec["name"])
    text = "%s: kernel modules missing: %s." % (
        hostname,
        "; ".join("%s (%s)" % (", ".join(names), reason) for reason, names in by_reason.items()),
    )
    purposes = [spec["purpose"] for spec in missing if spec.get("purpose")]
    if purposes:
        text += " Not working on this host: %s." % "; ".join(purposes)
    return text


class KernelManager:
    def __init__(self, module):
        self.module = module
        self.release = os.uname().release
        self.changed = False
        self.diff_before = []
        self.diff_after = []

    def module_state(self, spec):
        """(state, reason, loadable_module) for one kernel module, without changing anything."""
        name = spec["name"]
        if os.path.isdir("/sys/module/%s" % name.replace("-", "_")):
            return "loaded", "", False
        if spec.get("probe_path") and os.path.exists(spec["probe_path"]):
            return "builtin", "", False
        moddir = "/lib/modules/%s" % self.release
        if not os.path.isdir(moddir):
            return "missing", "%s does not exist, so no module can be loaded (a container host?)" % moddir, False
        builtin = os.path.join(moddir, "modules.builtin")
        if os.path.exists(builtin):
            with open(builtin) as handle:
                if any(line.rstrip().endswith("/%s.ko" % name) for line in handle):
                    return "builtin", "", False
        rc, _out, err = self.module.run_command(["modprobe", "--dry-run", name], environ_update=dict(LC_ALL="C"))
        if rc != 0:
            return "missing", "not available in this kernel (%s)" % (err.strip() or "modprobe --dry-run failed"), False
        return "unloaded", "", True

    def ensure_modules(self, specs):
        report, missing, loadable = {}, [], []
        for spec in specs:
            state, reason, can_load = self.module_state(spec)
            if can_load:
                loadable.append(spec["name"])
                if self.module.check_mode:
                    state = "loaded"
                    self._changed("module %s: not loaded" % spec["name"], "module %s: loaded" % spec["name"])
                else:
                    rc, _out, err = self.module.run_command(["modprobe", spec["name"]], environ_update=dict(LC_ALL="C"))
                    if rc == 0:
                        state = "loaded"
                        self._changed("module %s: not loaded" % spec["name"], "module %s: loaded" % spec["name"])
                    else:
                        loadable.remove(spec["name"])
                        state, reason = "missing", "modprobe failed: %s" % err.strip()
            elif state == "loaded" and os.path.isdir("/lib/modules/%s" % self.release):
                loadable.append(spec["name"])
            report[spec["name"]] = dict(state=state, reason=reason) if reason else dict(state=state)
            if state == "missing":
                missing.append(spec)
        if missing:
            self.module.warn(missing_modules_warning(os.uname().nodename, missing, report))
        missing = [s["name"] for s in missing]
        return report, missing, loadable

    def ensure_sysctls(self, sysctls):
        report = {}
        for name, wanted in sysctls.items():
            wanted = normalize_sysctl(wanted)
            path = sysctl_path(name)
            if not os.path.exists(path):
                report[name] = dict(state="missing", wanted=wanted)
                self.module.warn(
                    "sysctl %s does not exist on this kernel (its module is not loaded?); wanted %s" % (name, wanted)
                )
                continue
            with open(path) as handle:
                value = normalize_sysctl(handle.read())
            if value == wanted:
                report[name] = dict(state="ok", value=value)
                continue
            if self.module.check_mode:
                report[name] = dict(state="set", value=wanted, before=value)
                self._changed("%s = %s" % (name, value), "%s = %s" % (name, wanted))
                continue
            try:
                with open(path, "w") as handle:
                    handle.write(wanted)
            except OSError as exc:
                report[name] = dict(state="read_only", value=value, wanted=wanted)
                self.module.warn(
                    "sysctl %s is %s, not %s, and cannot be set here: %s" % (name, value, wanted, exc.strerror)
                )
                continue
            report[name] = dict(state="set", value=wanted, before=value)
            self._changed("%s = %s" % (name, value), "%s = %s" % (name, wanted))
        return report

    def ensure_file(self, path, content):
        current = None
        if os.path.exists(path):
            with open(path) as handle:
                current = handle.read()
        if current == content:
            return
        self._changed("%s:\n%s" % (path, current or "(absent)\n"), "%s:\n%s" % (path, content))
        if not self.module.check_mode:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + ".swarmplane-tmp"
            with open(tmp, "w") as handle:
                handle.write(content)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)

    def _changed(self, before, after):
        self.changed = True
        self.diff_before.append(before)
        self.diff_after.append(after)

    def run(self):
        params = self.module.params
        modules, missing, loadable = self.ensure_modules(params["modules"])
        sysctls = self.ensure_sysctls(params["sysctls"])
        if params["persist"]:
            if loadable:
                self.ensure_file(params["modules_load_file"], render_modules_load(loadable))
            settable = {k: v for k, v in params["sysctls"].items() if sysctls[k]["state"] in ("ok", "set")}
            if settable:
                self.ensure_file(params["sysctl_file"], render_sysctl_file(settable))
        return dict(
            changed=self.changed,
            kernel=self.release,
            modules=modules,
            missing_modules=missing,
            sysctls=sysctls,
            diff=dict(before="\n".join(self.diff_before) + "\n", after="\n".join(self.diff_after) + "\n"),
        )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            modules=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    name=dict(type="str", required=True),
                    purpose=dict(type="str", default=""),
                    probe_path=dict(type="str"),
                ),
            ),
            sysctls=dict(type="dict", default={}),
            persist=dict(type="bool", default=True),
            modules_load_file=dict(type="path", default="/etc/modules-load.d/swarmplane.conf"),
            sysctl_file=dict(type="path", default="/etc/sysctl.d/90-swarmplane.conf"),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**KernelManager(module).run())


if __name__ == "__main__":
    main()
