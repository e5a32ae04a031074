"""Encryption in the age format (age-encryption.org/v1) through pyrage, the Python binding to rage.

- :mod:`.identities`: X25519 identity files (plain or passphrase-protected) and OpenSSH private keys.
- :mod:`.recipients`: ``age1...``, ``ssh-ed25519`` and ``ssh-rsa`` recipients and recipients files.
- :mod:`.stream`: streaming, atomic encryption and decryption of files, and the manifest ``ops`` fields.
- :mod:`.passphrase`: passphrases from a file descriptor or a file, and scrypt mode.
- :mod:`.header`: the header look-ahead that adds the age spec's checks rage lacks, and error kinds.
- :mod:`.stage`: the per-record work of the encrypt and decrypt commands.
- :mod:`.types`: the identity and recipient types they share.
"""

from .identities import Identity, generate, load_identities, load_identity_file, recipient, write_identity_file
from .passphrase import Passphrase
from .recipients import Recipient
from .stream import Written, decrypt_file, decrypt_stream, encrypt_file, encrypt_stream, op_fields

__all__ = ["Identity", "Passphrase", "Recipient", "Written", "decrypt_file", "decrypt_stream", "encrypt_file",
           "encrypt_stream", "generate", "load_identities", "load_identity_file", "op_fields", "recipient",
           "write_identity_file"]
