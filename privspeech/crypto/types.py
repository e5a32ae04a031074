"""The key types the crypto modules share: a leaf module, so that the modules that parse keys and the module that
streams with them need not import each other for their names."""

from __future__ import annotations

from typing import Union

import pyrage

Identity = Union[pyrage.x25519.Identity, pyrage.ssh.Identity]
Recipient = Union[pyrage.x25519.Recipient, pyrage.ssh.Recipient]
