"""The blobstore's errors; each message names the blob (or the digest) it is about."""


class BlobstoreError(Exception):
    """Base of the blobstore's errors."""


class InvalidBlobId(BlobstoreError, ValueError):
    """An id that is not a blob id of ours (never looked up, never a path)."""


class InvalidDigest(BlobstoreError, ValueError):
    """A digest that is not BOSH's ``algo:hex;...`` form."""


class BlobNotFound(BlobstoreError, LookupError):
    pass


class BlobTooLarge(BlobstoreError):
    """A blob bigger than the store accepts; nothing was stored."""


class BlobIncomplete(BlobstoreError):
    """A stream that ended before its announced size; nothing was stored."""


class BlobDigestMismatch(BlobstoreError):
    """A blob whose content does not match the digest it was asked for."""
