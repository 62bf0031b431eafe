"""The signed directory reads its statements again every few seconds but verifies them again
only when their bytes changed: an operator's edit of a stored statement is still caught."""

from __future__ import annotations

import pytest
from tests.unit.services.signed_world import NoPrincipals, Signed

from blo_exchange.db import statements as module
from blo_exchange.db.statements import SignedDirectory


class ListStore:
    """The store's one read the directory makes, from a list an "operator" may edit."""

    def __init__(self, raws: list[bytes]) -> None:
        self.raws = raws

    async def all(self) -> list[bytes]:
        return list(self.raws)


async def test_unchanged_statements_are_not_verified_again_and_an_edited_one_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed = Signed.demo()
    verified: list[int] = []

    def counting(raws: list[bytes], roots: object) -> object:
        verified.append(len(raws))
        return real(raws, roots)  # type: ignore[arg-type]

    real = module.verify_statements
    monkeypatch.setattr(module, "verify_statements", counting)
    store = ListStore(list(signed.raws))
    directory = SignedDirectory(
        store,  # type: ignore[arg-type]
        signed.pinned(),
        principals=NoPrincipals(),
        cache_seconds=0.0,
    )
    verified.clear()  # the empty set it starts from
    node = await directory.node("blo-oybek-uz")
    await directory.agreements()
    await directory.node("blo-oybek-uz")
    assert verified == [len(signed.raws)]  # three reads, one verification

    # The operator rewrites UZ's node statement in place (one byte of the signed body).
    index = next(i for i, raw in enumerate(store.raws) if b'"blo-oybek-uz"' in raw)
    edited = store.raws[index].replace(b'"blo-oybek-uz"', b'"blo-oybek-uy"', 1)
    store.raws[index] = edited
    facts = await directory.refresh()
    assert len(verified) == 2
    assert "blo-oybek-uy" not in facts.facts.nodes
    assert node.id == "blo-oybek-uz"
    assert any(reason == "bad_signature" for _, reason in facts.refused), facts.refused
