"""The second factor in ``Authenticator``: a principal bound to a device certificate needs it with
its token, and a node may require every terminal to be bound (a fake directory; the TLS layer's
verification is the integration tests' part, tests/integration/test_device_certificates.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from blo_exchange.domain.directory import Principal, Role
from blo_exchange.errors import DeviceCertificateRequired, Unauthenticated
from blo_exchange.services.auth import (
    Authenticator,
    certificate_credential,
    hash_token,
    new_token,
)
from tests.unit.services.fakes import FakeDirectory

NOW = datetime(2026, 12, 5, tzinfo=UTC)
DEVICE, OTHER = "a" * 64, "b" * 64


def principal(name: str, role: Role, device: str | None) -> Principal:
    terminal = role is Role.TERMINAL
    return Principal(
        id=name,
        role=role,
        node_id="blo-karamyk-kg" if terminal else None,
        agency_id="kg-border-service" if role in (Role.TERMINAL, Role.ANALYST) else None,
        created_at=NOW - timedelta(days=1),
        device_certificate=device,
    )


def authenticator(*, require: bool = False) -> tuple[Authenticator, dict[str, str]]:
    directory = FakeDirectory()
    tokens: dict[str, str] = {}
    for who, role, device in (
        ("bound", Role.TERMINAL, DEVICE),
        ("unbound", Role.TERMINAL, None),
        ("analyst", Role.ANALYST, None),
    ):
        tokens[who] = new_token()
        directory.principals[hash_token(tokens[who])] = principal(who, role, device)
    directory.principals[hash_token(certificate_credential(OTHER))] = principal(
        "cert-only", Role.TERMINAL, OTHER
    )
    auth = Authenticator(
        directory=directory,  # type: ignore[arg-type]
        clock=lambda: NOW,
        require_terminal_certificates=require,
    )
    return auth, tokens


async def test_a_bound_token_needs_its_own_certificate() -> None:
    auth, tokens = authenticator()
    assert (await auth.authenticate(tokens["bound"], certificate=DEVICE)).id == "bound"
    assert (await auth.authenticate(tokens["bound"], certificate=DEVICE.upper())).id == "bound"
    with pytest.raises(DeviceCertificateRequired, match="present it with the token"):
        await auth.authenticate(tokens["bound"], certificate=None)
    with pytest.raises(DeviceCertificateRequired, match="not the device certificate"):
        await auth.authenticate(tokens["bound"], certificate=OTHER)
    # A web session's hash is the same credential: the same rule.
    with pytest.raises(Unauthenticated):
        await auth.authenticate_hash(hash_token(tokens["bound"]), certificate=None)


async def test_unbound_principals_need_none_unless_the_node_requires_it_of_terminals() -> None:
    relaxed, tokens = authenticator()
    assert (await relaxed.authenticate(tokens["unbound"], certificate=None)).id == "unbound"
    strict, tokens = authenticator(require=True)
    with pytest.raises(Unauthenticated, match="requires each terminal"):
        await strict.authenticate(tokens["unbound"], certificate=None)
    with pytest.raises(Unauthenticated, match="requires each terminal"):
        await strict.authenticate(tokens["unbound"], certificate=DEVICE)
    assert (await strict.authenticate(tokens["bound"], certificate=DEVICE)).id == "bound"
    # Analysts are not terminals: the requirement is not theirs.
    assert (await strict.authenticate(tokens["analyst"], certificate=None)).id == "analyst"
    # A certificate that is itself the credential satisfies it.
    assert (await strict.authenticate_certificate(OTHER)).id == "cert-only"


async def test_a_wrong_token_stays_opaque_whatever_certificate_comes_with_it() -> None:
    auth, _ = authenticator()
    for certificate in (None, DEVICE):
        with pytest.raises(Unauthenticated, match="a valid bearer token is required") as refused:
            await auth.authenticate(new_token(), certificate=certificate)
        assert not isinstance(refused.value, DeviceCertificateRequired)
