"""The exception tree of blo-exchange.

Every error the package raises on purpose derives from :class:`BloExchangeError`.
The edges (``api``, ``cli``) translate them into HTTP statuses or exit codes;
nothing below them knows about either::

    BloExchangeError
    ├── ConfigurationError        settings or key files are missing or unusable
    ├── InvalidEnvelope           (crypto) any way an envelope or receipt can be bad
    │   ├── NotEntitled           validly signed, but the signer may not say that (has ``reason``)
    │   └── InvalidStatement      a directory statement is malformed or not signed by pinned roots
    ├── DirectoryError
    │   ├── NotFound              an agency, node, key, principal or alert is unknown
    │   └── Conflict              a directory record already exists
    ├── PolicyError
    │   └── NoAgreement           no sharing agreement in force covers the alert
    ├── AuthError
    │   ├── Unauthenticated       no, unknown, expired or revoked credential
    │   │   └── DeviceCertificateRequired  a device-bound credential without its certificate
    │   ├── Forbidden             the principal's role or binding does not allow it
    │   └── RateLimited           the principal sent too many requests (has ``retry_after``)
    ├── IdempotencyError
    │   ├── IdempotencyMismatch   the key was used before with a different body
    │   └── IdempotencyInProgress the key's first request is still being processed
    ├── OutOfRange                a ledger index or tree size beyond what has been signed
    ├── QueryTooLong              an auditor's query string too long to record in full
    ├── LedgerIntegrityError      stored ledger data disagrees with its signed-over bytes
    ├── BusError                  NATS is unreachable or did not acknowledge
    ├── RuntimeServiceError       an embedded server failed to start or stop
    ├── InvalidPackage            an offline package is refused (has ``reason`` and ``member``)
    └── UploadError               an attachment upload or file was refused
        ├── UploadTooLarge        longer than the node's limit
        ├── UnsupportedMedia      not a type the node accepts, or not what it says it is
        ├── UploadOffsetMismatch  a chunk that does not start where the upload stands
        ├── AttachmentPending     the file has not arrived (yet), or was refused
        └── AttachmentErased      a nominal file whose retention ended here (crypto-shredded)
"""

from __future__ import annotations

__all__ = [
    "AttachmentErased",
    "AttachmentPending",
    "AuthError",
    "BloExchangeError",
    "BusError",
    "ConfigurationError",
    "Conflict",
    "DeviceCertificateRequired",
    "DirectoryError",
    "Forbidden",
    "IdempotencyError",
    "IdempotencyInProgress",
    "IdempotencyMismatch",
    "InvalidEnvelope",
    "InvalidPackage",
    "InvalidStatement",
    "LedgerIntegrityError",
    "NoAgreement",
    "NotEntitled",
    "NotFound",
    "OutOfRange",
    "PolicyError",
    "QueryTooLong",
    "RateLimited",
    "RuntimeServiceError",
    "Unauthenticated",
    "UnsupportedMedia",
    "UploadError",
    "UploadOffsetMismatch",
    "UploadTooLarge",
    "http_status",
]


class BloExchangeError(Exception):
    """Root of every error raised on purpose by blo-exchange."""


class ConfigurationError(BloExchangeError):
    pass


class InvalidEnvelope(BloExchangeError):  # noqa: N818 - named after pyca's InvalidToken
    """An envelope or receipt failed a check. Deliberately says nothing about which."""


class NotEntitled(InvalidEnvelope):
    """A message signed by a genuine node that claims more than the node may: another agency,
    a pair it does not serve, recipients no agreement allows. ``reason`` is for counting only."""

    def __init__(self, reason: str) -> None:
        super().__init__("the signer is not entitled to this message")
        self.reason = reason


class InvalidStatement(InvalidEnvelope):
    """A directory statement that is malformed, or lacks a valid signature by the pinned root of
    an agency that must sign it. ``reason`` is for counting only."""

    def __init__(self, reason: str, message: str = "invalid directory statement") -> None:
        super().__init__(message)
        self.reason = reason


class DirectoryError(BloExchangeError):
    pass


class NotFound(DirectoryError):  # noqa: N818
    pass


class Conflict(DirectoryError):  # noqa: N818
    pass


class PolicyError(BloExchangeError):
    pass


class OutOfRange(BloExchangeError):  # noqa: N818
    pass


class NoAgreement(PolicyError):  # noqa: N818
    pass


class AuthError(BloExchangeError):
    pass


class Unauthenticated(AuthError):  # noqa: N818
    pass


class DeviceCertificateRequired(Unauthenticated):
    """A valid credential bound to a device certificate, presented without that certificate
    (none, or another); the edges may say so, where a wrong token gets one opaque answer."""


class Forbidden(AuthError):  # noqa: N818
    pass


class RateLimited(AuthError):  # noqa: N818
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyError(BloExchangeError):
    pass


class IdempotencyMismatch(IdempotencyError):  # noqa: N818
    pass


class IdempotencyInProgress(IdempotencyError):  # noqa: N818
    pass


class QueryTooLong(BloExchangeError):  # noqa: N818
    """Refused rather than recorded cut: the ledger must hold every filter an auditor used."""


class LedgerIntegrityError(BloExchangeError):
    """What the database says about the ledger disagrees with the bytes checkpoints sign.

    Raised instead of answering: an auditor gets an error, never a quietly wrong answer.
    """


class BusError(BloExchangeError):
    pass


class RuntimeServiceError(BloExchangeError):
    pass


class InvalidPackage(BloExchangeError):  # noqa: N818
    """An offline package (docs/contracts/packages.md) failed a check; refused whole. Unlike an
    envelope's rejection it says which member and why: the person holding the USB key must learn
    whether to ask for a new package, and the exporter already knows all the package holds."""

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"package refused: {member}: {reason}")
        self.member = member
        self.reason = reason


class UploadError(BloExchangeError):
    pass


class UploadTooLarge(UploadError):  # noqa: N818
    pass


class UnsupportedMedia(UploadError):  # noqa: N818
    pass


class UploadOffsetMismatch(UploadError):  # noqa: N818
    pass


class AttachmentPending(UploadError):  # noqa: N818
    pass


class AttachmentErased(UploadError):  # noqa: N818
    pass


# The HTTP status and problem type of each error, for the two edges that speak HTTP (``api`` and
# ``web``): kept beside the tree so a new error class gets its status where it is declared.
_HTTP_STATUS: list[tuple[type[BloExchangeError], int, str]] = [
    (Unauthenticated, 401, "unauthenticated"),
    (Forbidden, 403, "forbidden"),
    (RateLimited, 429, "rate-limited"),
    (NotFound, 404, "not-found"),
    (Conflict, 409, "conflict"),
    (IdempotencyInProgress, 409, "idempotency-in-progress"),
    (IdempotencyMismatch, 422, "idempotency-key-reused"),
    (PolicyError, 422, "policy"),
    (OutOfRange, 422, "validation"),
    (QueryTooLong, 422, "query-too-long"),
    (LedgerIntegrityError, 500, "ledger-integrity"),
    (BusError, 503, "bus-unavailable"),
    (UploadTooLarge, 413, "upload-too-large"),
    (UnsupportedMedia, 415, "unsupported-media-type"),
    (UploadOffsetMismatch, 409, "upload-offset-mismatch"),
    (AttachmentPending, 409, "attachment-pending"),
    (AttachmentErased, 410, "attachment-erased"),
    (UploadError, 422, "upload"),
]


def http_status(exc: BloExchangeError) -> tuple[int, str]:
    """HTTP status and problem type of an error; 500 for one nobody mapped."""
    for cls, status, type_ in _HTTP_STATUS:
        if isinstance(exc, cls):
            return status, type_
    return 500, "internal"
