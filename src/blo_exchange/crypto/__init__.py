"""Cryptography for blo-exchange: canonical JSON, keys, the alert envelope and receipts.

The only package that imports ``cryptography``. Every way an envelope or receipt can be
bad raises :class:`~blo_exchange.errors.InvalidEnvelope`.
"""

__all__: list[str] = []
