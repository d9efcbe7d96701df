# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network namespaces for the kernel data plane modules (ipvs, ipvs_info, vxlan).

A namespace is named as `ip netns` names it (a file in /run/netns) or given as the path of a namespace
file, such as Docker's /var/run/docker/netns/ingress_sbox. Python before 3.12 has no os.setns, so
libc's setns(2) is called through ctypes (standard library only: targets get nothing from PyPI).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from contextlib import contextmanager

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000


class NetnsError(Exception):
    """The namespace does not exist or cannot be entered; the message names it and says what to do."""


def netns_path(netns):
    """The namespace file of a name or path (None for the host's own namespace); fails if it does not exist."""
    if not netns:
        return None
    path = netns if "/" in netns else os.path.join(NETNS_RUN_DIR, netns)
    if not os.path.exists(path):
        if "/" in netns:
            raise NetnsError(
                "netns=%s: no such namespace file. Fix: name an existing one (Docker's routing mesh namespace, "
                "/var/run/docker/netns/ingress_sbox, exists once the node is in a swarm), or a name from ip netns list."
                % netns
            )
        raise NetnsError(
            "netns=%s: the network namespace does not exist (no %s in %s). Fix: create it first (ip netns add %s), "
            "or name an existing one." % (netns, netns, NETNS_RUN_DIR, netns)
        )
    return path


def _setns(fd):
    if hasattr(os, "setns"):
        os.setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def entered(path):
    """Run the body inside the namespace at path (None: stay where we are), then come back.

    Sockets opened inside stay bound to that namespace after we leave, so a netlink socket can be
    opened in the namespace and used from the host's.
    """
    if path is None:
        yield
        return
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
    except OSError as exc:
        os.close(own)
        raise NetnsError("netns %s: cannot open it: %s" % (path, exc.strerror)) from None
    try:
        try:
            _setns(target)
        except OSError as exc:
            hint = " (not a network namespace file?)" if exc.errno == errno.EINVAL else ""
            raise NetnsError("netns %s: cannot enter it: %s%s" % (path, exc.strerror, hint)) from None
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)
