"""A stand-in for the get-pip.py script ansible-test downloads to bootstrap pip in its virtual environments
(https://ci-files.testing.ansible.com is not reachable from every machine). ansible-test runs it with pip's
arguments (the pip version to install, --no-setuptools, --no-wheel); this installs pip from Python's own
ensurepip, then the asked-for packages from the package index pip is configured with.

scripts/ansible-test-sanity.sh puts it where ansible-test looks for a cached copy, when there is none."""

import subprocess
import sys

SKIPPED = {"--no-setuptools", "--no-wheel"}

arguments = [a for a in sys.argv[1:] if a not in SKIPPED]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
packages = [a for a in arguments if not a.startswith("-")]
if packages:
    subprocess.check_call([sys.executable, "-m", "pip", "install", *arguments])
