"""Data safety: rotate the encryption key, export the installation, import it elsewhere.

- ``keys``: re-encrypt every encrypted column under a new key, in one
  transaction, then replace the data-dir key file (``rotate_encryption_key``).
- ``archive``: the export file: a zip whose members are encrypted with a key
  derived from the operator's passphrase (scrypt, then AES-GCM in chunks).
- ``installation``: what an export holds (the rows of the console's apps,
  secrets decrypted, and the data-dir files needed to rebuild) and how an
  import puts it back (one transaction; files moved in after the commit).
- ``api``: the admin API for all three.

Management commands: ``rotate_encryption_key``, ``export_installation`` and
``import_installation``.
"""
