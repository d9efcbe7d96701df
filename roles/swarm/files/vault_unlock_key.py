# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep the swarm's unlock key in an Ansible Vault file, encrypted; run on the controller by the swarm role.

    vault_unlock_key.py --vault-id LABEL@PASSWORD_FILE [--check] FILE   (the key on stdin)

FILE becomes a vault-encrypted vars file holding `swarm_unlock_key: <key>`, mode 0600, written through a
temporary file in the same directory and renamed, so it is never in clear on disk, not even for a moment.
A file that already holds this key is left alone; a file that holds anything else (other variables, another
password) is refused rather than overwritten. Prints `unchanged` or `written` (`would write` with --check);
errors go to stderr and never quote the key.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import yaml
from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultLib, get_file_vault_secret

VARIABLE = "swarm_unlock_key"


def split_vault_id(vault_id):
    """'label@source' -> (label, source); a bare source gets ansible's label 'default'."""
    label, sep, source = vault_id.partition("@")
    return (label, source) if sep else ("default", vault_id)


def open_vault(vault_id):
    label, source = split_vault_id(vault_id)
    if source == "prompt":
        raise AnsibleError("the vault ID %s asks for a prompt; name a password file or script" % vault_id)
    secret = get_file_vault_secret(filename=source, vault_id=label, loader=DataLoader())
    secret.load()
    return VaultLib([(label, secret)]), label


def stored_key(vault, path):
    """The key the vault file holds; None when there is no file. Raises AnsibleError for a file that is not
    this vault's file of the key alone, which must not be overwritten."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as handle:
            data = yaml.safe_load(vault.decrypt(handle.read()))
    except (AnsibleError, yaml.YAMLError) as exc:
        raise AnsibleError(
            "it exists and this vault ID cannot read it (%s); name a file of its own" % str(exc).rstrip(".")
        ) from None
    if not isinstance(data, dict) or set(data) != {VARIABLE}:
        raise AnsibleError("it holds more than %s; name a file of its own" % VARIABLE)
    return data[VARIABLE]


def write_encrypted(vault, label, path, key):
    plaintext = yaml.safe_dump({VARIABLE: key}, default_flow_style=False)
    ciphertext = vault.encrypt(plaintext, vault_id=label)
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(ciphertext)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def main(argv=None, stdin=sys.stdin):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault-id", required=True)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("path")
    args = parser.parse_args(argv)
    key = stdin.read().strip()
    if not key:
        sys.exit("no unlock key on stdin: the swarm has autolock off")
    path = os.path.abspath(os.path.expanduser(args.path))
    try:
        vault, label = open_vault(args.vault_id)
        if stored_key(vault, path) == key:
            print("unchanged")
            return
        if not args.check:
            write_encrypted(vault, label, path, key)
    except (OSError, AnsibleError) as exc:
        sys.exit("cannot write the vault file %s: %s" % (path, exc))
    print("would write" if args.check else "written")


if __name__ == "__main__":
    main()
