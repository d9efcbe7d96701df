# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the running kernel can do, and bringing its modules and sysctls to what swarm networking needs."""

from __future__ import annotations

import os


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def kernel_has_module(name):
    """Whether a kernel module is loaded, built in, or loadable (its .ko is listed for the running kernel).

    A container has no /lib/modules of its host's kernel, so there only a loaded module counts.
    """
    if os.path.isdir("/sys/module/%s" % name):
        return True
    moddir = "/lib/modules/%s" % os.uname().release
    return any("/%s.ko" % name in _read(os.path.join(moddir, index)) for index in ("modules.builtin", "modules.dep"))


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
    """Brings kernel modules, sysctls and their boot files to what is wanted; with check_only, only says what differs.

    The preflight probe (swarm_info's kernel option) runs it with check_only=True, so a host whose kernel settings
    have not drifted needs no host_kernel run; host_kernel runs it for real.
    """

    def __init__(self, module, check_only=False):
        self.module = module
        self.check = module.check_mode or check_only
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
                if self.check:
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
            if self.check and not os.access(path, os.W_OK):  # a read-only /proc/sys (a container): never drift
                report[name] = dict(state="read_only", value=value, wanted=wanted)
                self.module.warn("sysctl %s is %s, not %s, and cannot be set here" % (name, value, wanted))
                continue
            if self.check:
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
        if not self.check:
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

    def run(self, params):
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

    def drift(self):
        """What differs from the wanted settings, one line each (after run() with check_only)."""
        return [line.splitlines()[0] for line in self.diff_before]


KERNEL_OPTIONS = dict(
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
)
