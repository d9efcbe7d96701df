"""File logic of host_kernel (plugins/module_utils/kernel.py): sysctl paths and files, kernel module states, drift.

KernelManager reads fixed kernel paths (/proc/sys, /sys/module, /lib/modules). The `kernel` fixture gives the
module an `os` and an `open` that map those paths under a temporary root, so no real kernel state is read or
written.
"""

from __future__ import annotations

import builtins
import errno
import os
import stat
from types import SimpleNamespace

import pytest

from ansible_collections.swarmplane.cluster.plugins.module_utils import kernel as host_kernel
from ansible_collections.swarmplane.cluster.plugins.module_utils.kernel import (
    KernelManager,
    missing_modules_warning,
    normalize_sysctl,
    render_modules_load,
    render_sysctl_file,
    sysctl_path,
)

RELEASE = "6.1.0-28-amd64"


class FakeKernel:
    """A temporary root for the kernel's paths, seen by host_kernel through a rerooting `os` and `open`."""

    PREFIXES = ("/proc/", "/sys/", "/lib/modules/")

    def __init__(self, root):
        self.root = root
        self.read_only = set()
        self.path = SimpleNamespace(
            isdir=lambda p: os.path.isdir(self.reroot(p)),
            exists=lambda p: os.path.exists(self.reroot(p)),
            join=os.path.join,
            dirname=os.path.dirname,
        )

    def reroot(self, path):
        path = str(path)
        return str(self.root) + path if path.startswith(self.PREFIXES) else path

    def uname(self):
        return SimpleNamespace(release=RELEASE, nodename="node-1")

    def __getattr__(self, name):  # makedirs, chmod, replace, ... of the real os
        return getattr(os, name)

    def access(self, path, mode):
        return not (mode & os.W_OK and str(path) in self.read_only) and os.access(self.reroot(path), mode)

    def open(self, path, mode="r", *args, **kwargs):
        if "w" in mode and str(path) in self.read_only:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return builtins.open(self.reroot(path), mode, *args, **kwargs)

    def write(self, path, content=""):
        """Create a kernel file (path as the kernel names it) with content."""
        real = self.root / path.lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_text(content)

    def mkdir(self, path):
        (self.root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)

    def read(self, path):
        return (self.root / path.lstrip("/")).read_text()


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    fake = FakeKernel(tmp_path / "root")
    monkeypatch.setattr(host_kernel, "os", fake)
    monkeypatch.setattr(host_kernel, "open", fake.open, raising=False)
    return fake


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward"),
        ("net.bridge.bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-iptables"),
        ("net/ipv4/ip_forward", "/proc/sys/net/ipv4/ip_forward"),
    ],
)
def test_sysctl_name_maps_to_its_proc_sys_file(name, path):
    assert sysctl_path(name) == path


def test_dotted_sysctl_name_with_a_slash_keeps_the_dot_of_a_vlan_interface():
    assert sysctl_path("net.ipv4.conf.eth0/100.forwarding") == "/proc/sys/net/ipv4/conf/eth0.100/forwarding"


@pytest.mark.parametrize(
    ("value", "normal"),
    [("1\n", "1"), (1, "1"), ("4096\t87380   6291456\n", "4096 87380 6291456"), ("  ", "")],
)
def test_sysctl_values_are_normalised_to_single_spaces(value, normal):
    assert normalize_sysctl(value) == normal


def test_modules_load_file_lists_one_module_a_line_sorted():
    assert render_modules_load(["vxlan", "ip_vs", "br_netfilter"]) == (
        "# Managed by swarmplane: kernel modules swarm networking needs.\nbr_netfilter\nip_vs\nvxlan\n"
    )


def test_sysctl_file_lists_sorted_keys_with_normalised_values():
    rendered = render_sysctl_file({"net.ipv4.tcp_rmem": "4096\t87380 6291456", "net.ipv4.ip_forward": 1})
    assert rendered == (
        "# Managed by swarmplane: kernel parameters swarm networking needs.\n"
        "net.ipv4.ip_forward = 1\n"
        "net.ipv4.tcp_rmem = 4096 87380 6291456\n"
    )


# --------------------------------------------------------------------------- ensure_sysctls


def test_sysctl_already_at_the_wanted_value_is_ok_and_unchanged(kernel, fake_module):
    kernel.write("/proc/sys/net/ipv4/ip_forward", "1\n")
    manager = KernelManager(fake_module())
    assert manager.ensure_sysctls({"net.ipv4.ip_forward": 1}) == {"net.ipv4.ip_forward": dict(state="ok", value="1")}
    assert manager.changed is False
    assert kernel.read("/proc/sys/net/ipv4/ip_forward") == "1\n"


def test_sysctl_with_another_value_is_written(kernel, fake_module):
    kernel.write("/proc/sys/net/ipv4/ip_forward", "0\n")
    manager = KernelManager(fake_module())
    report = manager.ensure_sysctls({"net.ipv4.ip_forward": "1"})
    assert report == {"net.ipv4.ip_forward": dict(state="set", value="1", before="0")}
    assert kernel.read("/proc/sys/net/ipv4/ip_forward") == "1"
    assert (manager.changed, manager.diff_before, manager.diff_after) == (
        True,
        ["net.ipv4.ip_forward = 0"],
        ["net.ipv4.ip_forward = 1"],
    )


def test_sysctl_compared_after_whitespace_normalisation(kernel, fake_module):
    kernel.write("/proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n")
    manager = KernelManager(fake_module())
    report = manager.ensure_sysctls({"net.ipv4.tcp_rmem": "4096 131072  6291456"})
    assert report == {"net.ipv4.tcp_rmem": dict(state="ok", value="4096 131072 6291456")}
    assert manager.changed is False


def test_check_mode_reports_the_sysctl_change_without_writing(kernel, fake_module):
    kernel.write("/proc/sys/net/ipv4/ip_forward", "0\n")
    manager = KernelManager(fake_module(check_mode=True))
    report = manager.ensure_sysctls({"net.ipv4.ip_forward": 1})
    assert report == {"net.ipv4.ip_forward": dict(state="set", value="1", before="0")}
    assert manager.changed is True
    assert kernel.read("/proc/sys/net/ipv4/ip_forward") == "0\n"


def test_missing_sysctl_is_reported_and_warned_not_failed(kernel, fake_module):
    module = fake_module()
    manager = KernelManager(module)
    report = manager.ensure_sysctls({"net.bridge.bridge-nf-call-iptables": 1})
    assert report == {"net.bridge.bridge-nf-call-iptables": dict(state="missing", wanted="1")}
    assert module.warnings == [
        "sysctl net.bridge.bridge-nf-call-iptables does not exist on this kernel (its module is not loaded?); wanted 1"
    ]
    assert manager.changed is False


def test_read_only_sysctl_is_reported_with_the_os_error(kernel, fake_module):
    kernel.write("/proc/sys/net/ipv4/ip_forward", "0\n")
    kernel.read_only.add("/proc/sys/net/ipv4/ip_forward")
    module = fake_module()
    manager = KernelManager(module)
    report = manager.ensure_sysctls({"net.ipv4.ip_forward": 1})
    assert report == {"net.ipv4.ip_forward": dict(state="read_only", value="0", wanted="1")}
    assert module.warnings == ["sysctl net.ipv4.ip_forward is 0, not 1, and cannot be set here: Permission denied"]
    assert manager.changed is False


# --------------------------------------------------------------------------- ensure_file


def test_absent_file_is_created_with_its_directory_and_mode_0644(tmp_path, kernel, fake_module):
    target = tmp_path / "etc" / "sysctl.d" / "90-swarmplane.conf"
    manager = KernelManager(fake_module())
    manager.ensure_file(str(target), "net.ipv4.ip_forward = 1\n")
    assert target.read_text() == "net.ipv4.ip_forward = 1\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(target.parent) == ["90-swarmplane.conf"]
    assert manager.changed is True
    assert manager.diff_before == ["%s:\n(absent)\n" % target]
    assert manager.diff_after == ["%s:\nnet.ipv4.ip_forward = 1\n" % target]


def test_file_with_the_wanted_content_is_left_alone(tmp_path, kernel, fake_module):
    target = tmp_path / "swarmplane.conf"
    target.write_text("ip_vs\n")
    os.chmod(target, 0o600)
    manager = KernelManager(fake_module())
    manager.ensure_file(str(target), "ip_vs\n")
    assert manager.changed is False
    assert (manager.diff_before, manager.diff_after) == ([], [])
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_file_with_other_content_is_replaced_and_the_diff_shows_both(tmp_path, kernel, fake_module):
    target = tmp_path / "swarmplane.conf"
    target.write_text("ip_vs\n")
    manager = KernelManager(fake_module())
    manager.ensure_file(str(target), "ip_vs\nvxlan\n")
    assert target.read_text() == "ip_vs\nvxlan\n"
    assert (manager.diff_before, manager.diff_after) == (
        ["%s:\nip_vs\n" % target],
        ["%s:\nip_vs\nvxlan\n" % target],
    )


def test_check_mode_reports_the_file_change_without_writing(tmp_path, kernel, fake_module):
    target = tmp_path / "etc" / "modules-load.d" / "swarmplane.conf"
    manager = KernelManager(fake_module(check_mode=True))
    manager.ensure_file(str(target), "ip_vs\n")
    assert manager.changed is True
    assert not target.parent.exists()


# --------------------------------------------------------------------------- module_state


def test_module_with_a_sys_module_entry_is_loaded_dashes_read_as_underscores(kernel, fake_module):
    kernel.mkdir("/sys/module/nf_conntrack")
    module = fake_module()
    assert KernelManager(module).module_state(dict(name="nf-conntrack")) == ("loaded", "", False)
    assert module.calls == []


def test_module_whose_probe_path_exists_is_builtin(tmp_path, kernel, fake_module):
    probe = tmp_path / "ip_vs"
    probe.write_text("")
    manager = KernelManager(fake_module())
    assert manager.module_state(dict(name="ip_vs", probe_path=str(probe))) == ("builtin", "", False)


def test_module_is_missing_when_the_kernel_has_no_module_directory(tmp_path, kernel, fake_module):
    module = fake_module()
    state = KernelManager(module).module_state(dict(name="ip_vs", probe_path=str(tmp_path / "absent")))
    assert state == (
        "missing",
        "/lib/modules/%s does not exist, so no module can be loaded (a container host?)" % RELEASE,
        False,
    )
    assert module.calls == []


def test_module_listed_in_modules_builtin_is_builtin(kernel, fake_module):
    kernel.write(
        "/lib/modules/%s/modules.builtin" % RELEASE,
        "kernel/net/bridge/bridge.ko\nkernel/drivers/net/vxlan/vxlan.ko\n",
    )
    module = fake_module()
    assert KernelManager(module).module_state(dict(name="vxlan")) == ("builtin", "", False)
    assert module.calls == []


def test_module_modprobe_can_load_is_unloaded_and_loadable(kernel, fake_module):
    kernel.write("/lib/modules/%s/modules.builtin" % RELEASE, "kernel/drivers/net/vxlan/vxlan.ko\n")
    module = fake_module()
    assert KernelManager(module).module_state(dict(name="ip_vs")) == ("unloaded", "", True)
    assert module.calls == [["modprobe", "--dry-run", "ip_vs"]]


def test_module_modprobe_cannot_find_is_missing_with_its_error(kernel, fake_module):
    kernel.mkdir("/lib/modules/%s" % RELEASE)
    error = "modprobe: FATAL: Module ip_vs not found in directory /lib/modules/%s\n" % RELEASE
    module = fake_module(commands={("modprobe", "--dry-run", "ip_vs"): (1, "", error)})
    assert KernelManager(module).module_state(dict(name="ip_vs")) == (
        "missing",
        "not available in this kernel (%s)" % error.strip(),
        False,
    )


def test_module_modprobe_fails_silently_gets_a_generic_reason(kernel, fake_module):
    kernel.mkdir("/lib/modules/%s" % RELEASE)
    module = fake_module(commands={("modprobe", "--dry-run", "ip_vs"): (1, "", "")})
    state, reason, _ = KernelManager(module).module_state(dict(name="ip_vs"))
    assert (state, reason) == ("missing", "not available in this kernel (modprobe --dry-run failed)")


# --------------------------------------------------------------------------- ensure_modules


def test_missing_modules_are_warned_once_grouped_by_reason_with_their_purposes(kernel, fake_module):
    kernel.mkdir("/sys/module/overlay")
    module = fake_module()
    specs = [
        dict(name="ip_vs", purpose="the routing mesh"),
        dict(name="overlay", purpose="overlay filesystems"),
        dict(name="vxlan", purpose=""),
    ]
    report, missing, loadable = KernelManager(module).ensure_modules(specs)
    reason = "/lib/modules/%s does not exist, so no module can be loaded (a container host?)" % RELEASE
    assert report == {
        "ip_vs": dict(state="missing", reason=reason),
        "overlay": dict(state="loaded"),
        "vxlan": dict(state="missing", reason=reason),
    }
    assert (missing, loadable) == (["ip_vs", "vxlan"], [])
    assert module.warnings == [
        "node-1: kernel modules missing: ip_vs, vxlan (%s). Not working on this host: the routing mesh." % reason
    ]


def test_missing_modules_warning_lists_each_reason_once_in_first_seen_order():
    missing = [dict(name="ip_vs", purpose="the routing mesh"), dict(name="vxlan"), dict(name="ip_vs_rr", purpose="")]
    report = {
        "ip_vs": dict(state="missing", reason="not available in this kernel (not found)"),
        "vxlan": dict(state="missing", reason="modprobe failed: Operation not permitted"),
        "ip_vs_rr": dict(state="missing", reason="not available in this kernel (not found)"),
    }
    assert missing_modules_warning("node-7", missing, report) == (
        "node-7: kernel modules missing: ip_vs, ip_vs_rr (not available in this kernel (not found)); "
        "vxlan (modprobe failed: Operation not permitted). Not working on this host: the routing mesh."
    )
    assert missing_modules_warning("node-7", missing[1:2], report) == (
        "node-7: kernel modules missing: vxlan (modprobe failed: Operation not permitted)."
    )


def test_module_that_modprobe_fails_to_load_is_missing_with_the_modprobe_error(kernel, fake_module):
    kernel.mkdir("/lib/modules/%s" % RELEASE)
    module = fake_module(commands={("modprobe", "ip_vs"): (1, "", "modprobe: ERROR: Operation not permitted\n")})
    manager = KernelManager(module)
    report, missing, _loadable = manager.ensure_modules([dict(name="ip_vs")])
    assert report == {
        "ip_vs": dict(state="missing", reason="modprobe failed: modprobe: ERROR: Operation not permitted")
    }
    assert missing == ["ip_vs"]
    assert manager.changed is False


def test_loadable_module_is_loaded_with_modprobe(kernel, fake_module):
    kernel.mkdir("/lib/modules/%s" % RELEASE)
    module = fake_module()
    manager = KernelManager(module)
    report, missing, loadable = manager.ensure_modules([dict(name="ip_vs")])
    assert (report, missing, loadable) == ({"ip_vs": dict(state="loaded")}, [], ["ip_vs"])
    assert module.calls == [["modprobe", "--dry-run", "ip_vs"], ["modprobe", "ip_vs"]]
    assert manager.changed is True


def test_check_mode_does_not_load_a_loadable_module(kernel, fake_module):
    kernel.mkdir("/lib/modules/%s" % RELEASE)
    module = fake_module(check_mode=True)
    report, _missing, loadable = KernelManager(module).ensure_modules([dict(name="ip_vs")])
    assert (report, loadable) == ({"ip_vs": dict(state="loaded")}, ["ip_vs"])
    assert module.calls == [["modprobe", "--dry-run", "ip_vs"]]


# --------------------------------------------------------------------------- drift (the preflight probe)

PERSIST = dict(persist=True, modules_load_file="", sysctl_file="")


def drift_params(tmp_path, **sysctls):
    return dict(
        PERSIST,
        modules=[dict(name="ip_vs", purpose="", probe_path=None)],
        sysctls=sysctls,
        modules_load_file=str(tmp_path / "modules-load.d" / "swarmplane.conf"),
        sysctl_file=str(tmp_path / "sysctl.d" / "90-swarmplane.conf"),
    )


def test_check_only_names_each_drift_and_changes_nothing_even_outside_check_mode(tmp_path, kernel, fake_module):
    kernel.mkdir("/lib/modules/%s" % RELEASE)
    kernel.write("/proc/sys/net/ipv4/ip_forward", "0\n")
    module = fake_module()
    manager = KernelManager(module, check_only=True)
    manager.run(drift_params(tmp_path, **{"net.ipv4.ip_forward": 1}))
    assert manager.drift() == [
        "module ip_vs: not loaded",
        "net.ipv4.ip_forward = 0",
        "%s:" % (tmp_path / "modules-load.d" / "swarmplane.conf"),
        "%s:" % (tmp_path / "sysctl.d" / "90-swarmplane.conf"),
    ]
    assert module.calls == [["modprobe", "--dry-run", "ip_vs"]]
    assert kernel.read("/proc/sys/net/ipv4/ip_forward") == "0\n"
    assert not (tmp_path / "sysctl.d").exists()


def test_no_drift_once_host_kernel_applied_the_settings(tmp_path, kernel, fake_module):
    kernel.mkdir("/lib/modules/%s" % RELEASE)
    kernel.write("/proc/sys/net/ipv4/ip_forward", "0\n")
    params = drift_params(tmp_path, **{"net.ipv4.ip_forward": 1})
    KernelManager(fake_module()).run(params)
    kernel.mkdir("/sys/module/ip_vs")  # what the modprobe the fake ran would have left
    probe = KernelManager(fake_module(), check_only=True)
    probe.run(params)
    assert probe.drift() == []


def test_a_read_only_sysctl_is_no_drift_since_no_run_could_set_it(tmp_path, kernel, fake_module):
    kernel.write("/proc/sys/net/ipv4/ip_forward", "0\n")
    kernel.read_only.add("/proc/sys/net/ipv4/ip_forward")
    module = fake_module()
    probe = KernelManager(module, check_only=True)
    report = probe.ensure_sysctls({"net.ipv4.ip_forward": 1})
    assert report == {"net.ipv4.ip_forward": dict(state="read_only", value="0", wanted="1")}
    assert probe.drift() == []
    assert module.warnings == ["sysctl net.ipv4.ip_forward is 0, not 1, and cannot be set here"]
