# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the running kernel can do, read from /sys and /lib/modules without changing anything."""

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
