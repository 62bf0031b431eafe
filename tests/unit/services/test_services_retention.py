"""The nominal lifecycle's services with fakes: delivery through the retaining inbox, the sweeper
and its listeners, extension records at a recipient."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pytest

from blo_exchange.crypto.receipt import UnverifiedReceipt
from blo_exchange.domain.alerts import ALERT_SUBMISSION_ADAPTER
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.ids import format_time
from blo_exchange.errors import BusError
from blo_exchange.services.feed import FeedService
from blo_exchange.services.ports import StoredAlert
from blo_exchange.services.receipts import ReceiptPublisher, ReceiptType
from blo_exchange.services.retention import RetainedNominal, RetainingInbox
from blo_exchange.services.retention_review import RetentionReviews
from blo_exchange.services.retention_sweep import NominalSweeper
from blo_exchange.services.signed import SignedMessages
from tests.unit.services.fakes import FakeInbox, FakePublisher
from tests.unit.services.retention_fakes import FakeKeys, FakeStore
from tests.unit.services.world import NOW, World, clock

KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"
SUBJECT = "blo.v1.alerts.KG-TJ.seizure"


@dataclass
class Listener:
    erased: list[str] = field(default_factory=list)

    async def nominal_erased(self, row: RetainedNominal) -> None:
        self.erased.append(row.alert_id)


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


async def delivered(
    world: World,
    store: FakeStore,
    keys: FakeKeys,
    now: Callable[[], datetime] = clock,
    handed_on: list[StoredAlert] | None = None,
) -> tuple[str, RetainingInbox]:
    """KG's example seizure delivered to TJ through a retaining inbox; what delivery handed on
    to its post-store hooks (the live feed's frames) goes to ``handed_on``."""
    submission = ALERT_SUBMISSION_ADAPTER.validate_python(EXAMPLE_SEIZURE)
    await world.ingest(KG).submit(world.terminal(KG), submission, "key-1")
    raw = world.publisher.published[-1][1]
    inbox = RetainingInbox(
        FakeInbox(vault=store),
        node=world.node(TJ),
        store=store,
        keys=keys,
        directory=world.directory,
        clock=now,
    )
    delivery = world.delivery(TJ, inbox, FakePublisher())  # type: ignore[arg-type]
    if handed_on is not None:

        async def hook(alerts: Sequence[StoredAlert]) -> None:
            handed_on.extend(alerts)

        delivery.on_stored.append(hook)
    outcome = await delivery.handle(SUBJECT, raw, 1)
    assert outcome.status == "delivered"
    assert outcome.alert_id is not None
    return outcome.alert_id, inbox


def tj_analyst() -> Principal:
    return Principal(
        id="analyst-tj",
        role=Role.ANALYST,
        agency_id="tj-drug-control-agency",
        label="a",
        created_at=NOW,
    )


def feed(world: World, inbox: RetainingInbox) -> FeedService:
    key = world.agency_keys["tj-drug-control-agency"]
    return FeedService(
        node=world.node(TJ), kem_keys={key.key_id: key}, directory=world.directory, inbox=inbox
    )


async def test_delivered_nominal_is_readable_until_swept_then_only_the_case() -> None:
    world, store, keys, listener, now = World.demo(), FakeStore(), FakeKeys(), Listener(), Clock()
    alert_id, inbox = await delivered(world, store, keys)
    row = store.rows[(TJ, alert_id)]
    assert row.role == "recipient"
    assert row.agreement_id == "mou-kg-tj-2026"
    analyst = tj_analyst()
    item = await feed(world, inbox).get(analyst, alert_id)
    assert item["nominal"]["persons"][0]["name"] == "Example Driver"

    receipts = FakePublisher()
    sweeper = NominalSweeper(
        node=world.node(TJ),
        store=store,
        keys=keys,
        receipts=ReceiptPublisher(
            node=world.node(TJ), signer=world.signing[TJ], publisher=receipts, clock=clock
        ),
        clock=now,
        listeners=[listener],
    )
    assert await sweeper.sweep() == 0
    now.now = row.expires_at
    assert await sweeper.sweep() == 1
    assert await sweeper.sweep() == 0  # once
    assert keys.keys == {}
    assert listener.erased == [alert_id]
    item = await feed(world, inbox).get(analyst, alert_id)
    assert "nominal" not in item
    assert item["case"]["items"]
    body = UnverifiedReceipt.parse(receipts.published[0][1]).body
    assert body["type"] == "nominal_erased"
    assert body["agency"] == "tj-drug-control-agency"
    assert body["detail"]["expires_at"] == format_time(row.expires_at)


def tj_reviews(world: World, store: FakeStore, keys: FakeKeys) -> RetentionReviews:
    """TJ's retention reviews over ``store`` and ``keys``, its receipts going nowhere."""
    return RetentionReviews(
        node=world.node(TJ),
        store=store,
        keys=keys,
        receipts=ReceiptPublisher(
            node=world.node(TJ), signer=world.signing[TJ], publisher=FakePublisher(), clock=clock
        ),
        signed=SignedMessages(world.directory, clock=clock),
        clock=clock,
    )


async def test_a_recipient_applies_only_the_originators_extension_within_the_maximum() -> None:
    world, store, keys = World.demo(), FakeStore(), FakeKeys()
    alert_id, _ = await delivered(world, store, keys)
    row = store.rows[(TJ, alert_id)]
    reviews = tj_reviews(world, store, keys)

    async def extension(node: str, until: datetime, reason: str = "court") -> str | None:
        published = FakePublisher()
        await ReceiptPublisher(
            node=world.node(node), signer=world.signing[node], publisher=published, clock=clock
        ).send(
            receipt_id=f"r-{node}-{until}",
            type=ReceiptType.NOMINAL_RETENTION_EXTENDED,
            border_pair="KG-TJ",
            alert_id=alert_id,
            kind="seizure",
            agreement_ids=["mou-kg-tj-2026"],
            envelope_sha256=None,
            detail={"until": format_time(until), "reason": reason},
        )
        subject, data, _ = published.published[0]
        return await reviews.handle_record(subject, data)

    assert await extension(TJ, row.expires_at + timedelta(days=10)) == "not_originator"
    assert await extension(KG, row.max_until + timedelta(days=1)) == "beyond_maximum"
    assert await extension(KG, row.expires_at + timedelta(days=1), " ") == "reason_required"
    assert store.rows[(TJ, alert_id)] == row
    assert await extension(KG, row.max_until) == "extended"
    kept = store.rows[(TJ, alert_id)]
    assert kept.expires_at == row.max_until
    assert kept.sealed is not None
    assert kept.sealed.day == row.max_until.date()
    # A malformed record, or another type, is not this service's to count.
    assert await reviews.handle_record("blo.v1.receipts.KG-TJ", b"{}") is None


async def test_a_failed_receipt_leaves_the_key_destroyed_and_the_row_for_the_next_pass() -> None:
    world, store, keys, listener = World.demo(), FakeStore(), FakeKeys(), Listener()
    alert_id, inbox = await delivered(world, store, keys)
    row = store.rows[(TJ, alert_id)]
    bus = FakePublisher(fail=True)
    sweeper = NominalSweeper(
        node=world.node(TJ),
        store=store,
        keys=keys,
        receipts=ReceiptPublisher(
            node=world.node(TJ), signer=world.signing[TJ], publisher=bus, clock=clock
        ),
        clock=Clock(row.expires_at),
        listeners=[listener],
    )
    with pytest.raises(BusError):
        await sweeper.sweep()
    assert keys.keys == {}  # (1) first: the part no longer opens, whatever failed after
    assert store.rows[(TJ, alert_id)].erased_at is None
    assert "nominal" not in await feed(world, inbox).get(tj_analyst(), alert_id)
    bus.fail = False
    assert await sweeper.sweep() == 1
    assert listener.erased == [alert_id, alert_id]  # called again: listeners are idempotent
    assert len(bus.published) == 1


class SweptMeanwhile(FakeStore):
    """The sweeper erases the row right after an extension has read it."""

    async def get(self, node_id: str, alert_id: str) -> RetainedNominal | None:
        row = self.rows.get((node_id, alert_id))
        if row is not None:
            self.rows[(node_id, alert_id)] = replace(row, sealed=None, erased_at=NOW)
        return row


async def test_an_extension_racing_the_sweeper_does_not_bring_the_part_back() -> None:
    world, keys = World.demo(), FakeKeys()
    store = SweptMeanwhile()
    alert_id, _ = await delivered(world, store, keys)
    row = store.rows[(TJ, alert_id)]
    reviews = tj_reviews(world, store, keys)
    published = FakePublisher()
    await ReceiptPublisher(
        node=world.node(KG), signer=world.signing[KG], publisher=published, clock=clock
    ).send(
        receipt_id="r-1",
        type=ReceiptType.NOMINAL_RETENTION_EXTENDED,
        border_pair="KG-TJ",
        alert_id=alert_id,
        kind="seizure",
        agreement_ids=["mou-kg-tj-2026"],
        envelope_sha256=None,
        detail={"until": format_time(row.max_until), "reason": "court"},
    )
    subject, data, _ = published.published[0]
    assert await reviews.handle_record(subject, data) == "too_late"
    after = store.rows[(TJ, alert_id)]
    assert after.sealed is None
    assert after.erased_at == NOW


async def test_an_alert_arriving_after_its_retention_never_shows_its_nominal_part() -> None:
    world, store, keys, handed_on = World.demo(), FakeStore(), FakeKeys(), list[StoredAlert]()
    late = Clock(NOW + timedelta(days=400))
    alert_id, inbox = await delivered(world, store, keys, now=late, handed_on=handed_on)
    assert keys.keys == {}  # no key made for a day already over
    assert store.rows[(TJ, alert_id)].sealed is None
    item = await feed(world, inbox).get(tj_analyst(), alert_id)
    assert "nominal" not in item
    assert item["case"]["items"]
    # Not for a moment either: the live feed's frames are made from what delivery hands on.
    [stored] = handed_on
    assert "nominal" not in stored.opened.parts
    assert stored.opened.parts["case"]
    assert stored.item.envelope == (await inbox.get(TJ, alert_id)).envelope  # type: ignore[union-attr]


async def test_a_nominal_part_kept_in_the_vault_is_handed_on_whole() -> None:
    """The other side of the one above: in time, the post-store hooks get the nominal part."""
    world, store, keys, handed_on = World.demo(), FakeStore(), FakeKeys(), list[StoredAlert]()
    alert_id, _ = await delivered(world, store, keys, handed_on=handed_on)
    [stored] = handed_on
    assert stored.item.alert_id == alert_id
    assert b"Example Driver" in stored.opened.parts["nominal"]


async def test_a_row_postponed_behind_the_services_back_still_loses_its_key() -> None:
    """A database superuser moves ``expires_at`` later: the key of the day the part was sealed
    under is destroyed all the same (keys go by day, not by row), and no receipt claims an
    erasure, so the auditors' report shows the node overdue."""
    world, store, keys = World.demo(), FakeStore(), FakeKeys()
    alert_id, inbox = await delivered(world, store, keys)
    row = store.rows[(TJ, alert_id)]
    store.rows[(TJ, alert_id)] = replace(row, expires_at=row.expires_at + timedelta(days=300))
    receipts = FakePublisher()
    sweeper = NominalSweeper(
        node=world.node(TJ),
        store=store,
        keys=keys,
        receipts=ReceiptPublisher(
            node=world.node(TJ), signer=world.signing[TJ], publisher=receipts, clock=clock
        ),
        clock=Clock(row.expires_at),
    )
    assert await sweeper.sweep() == 0
    assert receipts.published == []
    assert "nominal" not in await feed(world, inbox).get(tj_analyst(), alert_id)
