"""The signed directory reads its statements again every few seconds but verifies them again
only when their bytes changed: an operator's edit of a stored statement is still caught."""

from __future__ import annotations

import asyncio

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


class HeldStore:
    """Reads that finish when the test lets them (``gate``), each the list as it was when the
    read began, as a database's snapshot is; ``reads`` counts them."""

    def __init__(self, raws: list[bytes]) -> None:
        self.raws = raws
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def all(self) -> list[bytes]:
        self.reads += 1
        snapshot = list(self.raws)
        await self.gate.wait()
        return snapshot


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _held_directory(raws: list[bytes]) -> tuple[SignedDirectory, HeldStore, Clock]:
    store, clock = HeldStore(raws), Clock()
    directory = SignedDirectory(
        store,  # type: ignore[arg-type]
        _SIGNED.pinned(),
        principals=NoPrincipals(),
        cache_seconds=2.0,
        clock=clock,
    )
    return directory, store, clock


_SIGNED = Signed.demo()


async def _let_run() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_questions_that_must_wait_for_a_read_share_one() -> None:
    """Twenty requests arriving while the facts are too old start one read between them, not
    one each in turn (stop 30: up to 26 reads a second, accepts held 1.3 s)."""
    directory, store, clock = _held_directory(list(_SIGNED.raws))
    store.gate.clear()
    asking = [asyncio.create_task(directory.agreements()) for _ in range(20)]
    await _let_run()
    assert store.reads == 1
    assert not any(task.done() for task in asking)  # nobody is served facts never read
    store.gate.set()
    answers = await asyncio.gather(*asking)
    assert store.reads == 1
    assert all(len(answer) == len(answers[0]) > 0 for answer in answers)

    clock.now = 2.0  # their age is up: the next questions wait, for one read again
    await asyncio.gather(*(directory.agreements() for _ in range(20)))
    assert store.reads == 2


async def test_facts_past_half_their_age_are_served_while_they_are_read_again() -> None:
    directory, store, clock = _held_directory(list(_SIGNED.raws))
    await directory.agreements()
    assert store.reads == 1

    clock.now = 0.9  # younger than half their age: served, no read
    await directory.agreements()
    assert store.reads == 1

    clock.now = 1.5
    store.gate.clear()  # the database is slow now
    for _ in range(10):  # served at once while one read goes on behind them
        await asyncio.wait_for(directory.agreements(), timeout=1.0)
    await _let_run()
    assert store.reads == 2
    store.gate.set()
    await _let_run()

    clock.now = 2.4  # 0.9 s after the read behind them started: served, no read
    await directory.agreements()
    assert store.reads == 2


async def test_facts_are_never_served_older_than_their_age() -> None:
    """A read behind the served facts that does not finish: once the facts' age is up, a
    question waits rather than be answered from them."""
    directory, store, clock = _held_directory(list(_SIGNED.raws))
    await directory.agreements()
    clock.now = 1.5
    store.gate.clear()
    await directory.agreements()  # starts the read behind, which hangs
    await _let_run()
    clock.now = 2.1
    asking = asyncio.create_task(directory.agreements())
    await _let_run()
    assert not asking.done()
    store.gate.set()
    await asking  # answered by the read that started at 1.5, 0.6 s before
    assert store.reads == 2


async def test_a_statement_accepted_during_a_read_is_believed_by_the_next_question() -> None:
    """``invalidate`` (a statement this process accepted): a read that began before it does
    not answer the questions after it, even one that finishes after."""
    raws = list(_SIGNED.raws)
    last = raws.pop()  # an agreement, added while a read is under way
    directory, store, _ = _held_directory(raws)
    store.gate.clear()
    before = asyncio.create_task(directory.agreements())
    await _let_run()
    store.raws.append(last)
    directory.invalidate()
    after = asyncio.create_task(directory.agreements())
    await _let_run()
    store.gate.set()
    assert len(await after) == len(await before) + 1
    assert store.reads == 2
