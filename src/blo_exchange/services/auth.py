"""Bearer tokens: creation and authentication. Tokens are 256 random bits; only their SHA-256 is
stored, so a copy of the database gives no one a usable credential. The lookup is by that hash
(an index seek), so timing reveals nothing about a token's bytes.

A node admits only its own principals: a terminal of this node, an analyst of this node's agency,
and (where the deployment says so) auditors and admins, who are bound to no agency. A valid token
of another node or agency gets the same answer as a wrong token, so a stolen terminal token is
usable only at its own office and the error says nothing about where else it works.

A principal may be bound to a device certificate (``Principal.device_certificate``, its SHA-256):
then its token alone is refused and must come with that certificate, which the TLS layer verified
(the node's own handshake against the pinned device CA, or the trusted proxy's). A node may also
require every terminal to be bound (``require_terminal_certificates``). The edges pass whatever
certificate the request presented, or None; they never decide whether one was needed.

Not here: what a principal may do (each service checks its own rule, see ``api.routes``); the
certificate's chain and validity (the TLS layer's, ``crypto.tls``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from datetime import datetime

from blo_exchange.crypto.canonical import b64u_encode
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.errors import DeviceCertificateRequired, Unauthenticated
from blo_exchange.services.ports import Directory

__all__ = ["TOKEN_PREFIX", "Authenticator", "certificate_credential", "hash_token", "new_token"]

# A prefix that makes tokens recognisable (and greppable in leaks), not a secret.
TOKEN_PREFIX = "blo_"  # noqa: S105  # nosec B105


def new_token(rng: Callable[[int], bytes] = os.urandom) -> str:
    return TOKEN_PREFIX + b64u_encode(rng(32))


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def certificate_credential(fingerprint: str) -> str:
    """The credential a client certificate stands for; stored hashed like a token. It can't be
    mistaken for a bearer token, which always starts with ``blo_``."""
    return f"x509-sha256:{fingerprint.lower()}"


class Authenticator:
    """``node`` is the node whose principals are admitted; ``None`` admits every active one (the
    CLI and tests of a directory without a node). ``admit_unbound`` admits auditors and admins.
    ``require_terminal_certificates`` refuses a terminal not bound to a device certificate."""

    def __init__(
        self,
        *,
        directory: Directory,
        clock: Callable[[], datetime],
        node: Node | None = None,
        admit_unbound: bool = True,
        require_terminal_certificates: bool = False,
    ) -> None:
        self._directory = directory
        self._clock = clock
        self._node = node
        self._admit_unbound = admit_unbound
        self._require_terminal_certificates = require_terminal_certificates

    async def authenticate(self, token: str | None, *, certificate: str | None) -> Principal:
        """The principal behind a token, presented with ``certificate`` (the SHA-256 of a
        verified client certificate, or None); one opaque error for every way the token can be
        wrong, a plain one when the certificate is."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            raise Unauthenticated("a valid bearer token is required")
        return await self.authenticate_hash(hash_token(token), certificate=certificate)

    async def authenticate_hash(self, digest: bytes, *, certificate: str | None) -> Principal:
        """The principal behind a token's hash (a web session keeps only that)."""
        principal = await self._directory.principal_by_token_hash(digest)
        if principal is None or not self.admits(principal):
            raise Unauthenticated("a valid bearer token is required")
        self._second_factor(principal, certificate)
        return principal

    async def authenticate_certificate(self, fingerprint: str) -> Principal:
        """The principal a verified client certificate is the credential of (no token)."""
        principal = await self._directory.principal_by_token_hash(
            hash_token(certificate_credential(fingerprint))
        )
        if principal is None or not self.admits(principal):
            raise Unauthenticated("this client certificate is not registered to a principal")
        if principal.device_certificate is not None:
            self._second_factor(principal, fingerprint)
        return principal

    def _second_factor(self, principal: Principal, certificate: str | None) -> None:
        """(4) a principal bound to a device certificate presented that certificate, not none
        and not another (another principal's or an unbound one); (5) where the node requires
        it, a terminal is bound at all."""
        bound = principal.device_certificate
        if bound is None:
            if self._require_terminal_certificates and principal.role is Role.TERMINAL:
                raise DeviceCertificateRequired(
                    "this node requires each terminal to present its device certificate; "
                    "none is bound to this one"
                )
            return
        if certificate is None:
            raise DeviceCertificateRequired(
                "this credential is bound to a device certificate: present it with the token"
            )
        if not hmac.compare_digest(certificate.lower(), bound):
            raise DeviceCertificateRequired(
                "the client certificate is not the device certificate bound to this credential"
            )

    def admits(self, principal: Principal) -> bool:
        """(1) active now: created, not expired, not revoked; (2) bound to this node: a terminal
        of it, an analyst of its agency; (3) auditors and admins only if ``admit_unbound``."""
        if not principal.is_active(self._clock()):
            return False
        if self._node is None:
            return True
        if principal.role is Role.TERMINAL:
            return principal.node_id == self._node.id
        if principal.role is Role.ANALYST:
            return principal.agency_id == self._node.agency_id
        return self._admit_unbound
