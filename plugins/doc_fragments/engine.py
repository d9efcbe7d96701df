# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options every swarmplane module that talks to the local Docker engine shares (ENGINE_ARGUMENT_SPEC)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  docker_host:
    description: The engine's socket or URL.
    type: str
    default: unix:///var/run/docker.sock
  timeout:
    description:
      - Seconds to wait for an engine API call. An engine that does not answer in time fails the module with
        C(no answer within N s) and the socket's own error, never as a missing engine; an engine that answers
        with an error fails it with the engine's words.
    type: int
    default: 60
requirements:
  - Docker SDK for Python >= 4.0 on the target (Debian/Ubuntu package python3-docker)
"""
