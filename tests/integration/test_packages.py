"""An offline package carried from KG's node to TJ's with the link cut (docs/contracts/
packages.md), on real servers: the signed demo directory, Postgres, nats-server and the ledger
writer.

KG's officer posts while TJ takes nothing off the stream; KG exports a package (with the ledger's
proofs); NATS goes down; TJ imports: every alert appears once in TJ's feed, a second import is
a no-op, a tampered copy is refused with its reason. NATS comes back: TJ's queued receipts reach
the ledger, once each, and the same alerts arriving again over NATS change nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from blo_exchange.bootstrap.packages import package_services
from blo_exchange.bus.consumer import BusMessage, PullConsumer
from blo_exchange.crypto.package import read_archive, write_archive
from blo_exchange.crypto.package_seal import open_package, seal_package
from blo_exchange.db.engine import session_factory
from blo_exchange.db.pending_receipts import SqlReceiptQueue
from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.domain.ids import format_time, utc_now
from blo_exchange.embedded import NatsServer
from blo_exchange.ledger.ports import EntryFilter
from tests.integration.package_cli import export_package, package_cli
from tests.integration.pipeline import Deployment, deployment, eventually, ledger_has

KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"
TJ_AGENCY = "tj-drug-control-agency"


async def _post(deploy: Deployment, example: dict[str, object]) -> str:
    response = await deploy.client(KG).post(
        "/v1/alerts",
        json=example,
        headers=deploy.terminal(KG) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["alert_id"])


async def _feed_ids(deploy: Deployment) -> list[str]:
    response = await deploy.client(TJ).get(
        "/v1/feed", params={"limit": 500}, headers=deploy.analyst(TJ)
    )
    assert response.status_code == 200, response.text
    return [item["alert_id"] for item in response.json()["items"]]


async def _checkpoint_covers(deploy: Deployment, alert_ids: list[str]) -> bool:
    store = deploy.writer_host.ledger
    rows = await store.entries(EntryFilter(type="alert_shared"), after=-1, limit=1000)
    indexes = {index for index, leaf in rows if any(a.encode() in leaf for a in alert_ids)}
    checkpoint = await store.latest_checkpoint()
    return (
        len(indexes) == len(alert_ids)
        and checkpoint is not None
        and checkpoint.tree_size > max(indexes)
    )


def _resume_delivery(deploy: Deployment) -> PullConsumer:
    """TJ's delivery consumer again, on its durable: what a restarted process does."""
    tj = deploy.runtimes[TJ]

    async def handle(batch: Sequence[BusMessage]) -> None:
        for message in batch:
            await tj.delivery.handle(message.subject, message.data, message.stream_seq)
            await message.ack()

    consumer = PullConsumer(tj.bus, tj.consumer.spec, handler=handle)
    tj.tasks.append(asyncio.create_task(consumer.run(), name="delivery-again"))
    return consumer


async def test_a_package_carried_with_the_link_cut_delivers_once_and_receipts_follow(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    async with deployment(database_url, nats_server.url, tmp_path / "keys", signed=True) as deploy:
        tj = deploy.runtimes[TJ]
        # TJ's link is cut: its delivery consumer stops, once the fetch in hand has returned.
        tj.consumer.stop()
        await next(t for t in tj.tasks if t.get_name() == "delivery")
        since = utc_now() - timedelta(seconds=1)
        alerts = [await _post(deploy, e) for e in (EXAMPLE_SEIZURE, EXAMPLE_RISK, EXAMPLE_SEIZURE)]
        await eventually(
            lambda: _checkpoint_covers(deploy, alerts),
            timeout=30,
            what="a signed checkpoint over the three alert_shared entries",
        )

        # KG exports, with the command an operator runs; then NATS goes down for everyone.
        package = tmp_path / "karamyk.blopkg"
        code, output = await export_package(
            deploy, KG, since=since, destination=TJ_AGENCY, to=package
        )
        assert code == 0, output
        assert "3 alert(s)" in output
        assert "3 ledger proof(s)" in output
        assert package.stat().st_mode & 0o777 == 0o600
        exported = package.read_bytes()
        members = read_archive(open_package(exported, agency=TJ_AGENCY, keys=tj.keys.kem))
        assert sorted(n for n in members if n.startswith("envelopes/")) == sorted(
            f"envelopes/{a}.json" for a in alerts
        )
        assert all(a.encode() not in exported for a in alerts)  # the courier sees no alert id
        nats_server.stop()

        # Tampered copies first: refused with the member and the reason, nothing delivered. A
        # flipped bit in the file as carried; and one in an envelope, sealed again to TJ's
        # public key (anyone can seal; only the exporter can sign the manifest).
        flipped_file = bytearray(exported)
        flipped_file[-200] ^= 0x04
        name = f"envelopes/{alerts[0]}.json"
        flipped = bytearray(members[name])
        flipped[100] ^= 0x04
        resealed = seal_package(
            write_archive({**members, name: bytes(flipped)}),
            for_agency=TJ_AGENCY,
            key=next(iter(tj.keys.kem.values())).public_key(),
        )
        for tampered, refusal in (
            (bytes(flipped_file), "package refused: sealed: cannot_open"),
            (resealed, f"package refused: {name}: sha256_mismatch"),
        ):
            (tmp_path / "tampered.blopkg").write_bytes(tampered)
            code, output = await package_cli(
                deploy, TJ, "import", str(tmp_path / "tampered.blopkg")
            )
            assert code == 1
            assert refusal in output
        assert await _feed_ids(deploy) == []

        code, output = await package_cli(deploy, TJ, "import", str(package))
        assert code == 0, output
        assert "3 ledger proof(s)" in output
        assert "3 delivered, 0 duplicate(s)" in output
        async with package_services(tj.settings) as services:
            assert services.importer is not None
            again = await services.importer.import_package(exported)
            assert (again.delivered, sorted(again.duplicates)) == ((), sorted(alerts))
            assert len(await services.queue.unsent(100)) == 3  # signed, waiting for the link

        feed = await _feed_ids(deploy)
        assert sorted(feed) == sorted(alerts)  # each once, readable by TJ's analyst

        # KG cannot know yet that the package arrived: no receipt has reached the ledger.
        window = ("--since", format_time(since), "--for", TJ_AGENCY)
        code, output = await package_cli(deploy, KG, "unconfirmed", *window)
        assert code == 0, output
        assert "3 alert(s) without a delivery receipt" in output

        # The link returns: TJ's node publishes the queued receipts; the ledger records each once.
        nats_server.start()
        for alert_id in alerts:
            await eventually(
                ledger_has(deploy, KG, type="alert_delivered", alert_id=alert_id),
                timeout=60,
                what=f"TJ's alert_delivered receipt for {alert_id} in the ledger",
            )

        code, output = await package_cli(deploy, KG, "unconfirmed", *window)
        assert "0 alert(s) without a delivery receipt" in output

        # TJ takes the stream again: the same alerts arrive over NATS and change nothing.
        consumer = _resume_delivery(deploy)
        try:
            await eventually(
                lambda: _delivered_again(deploy, len(alerts)),
                timeout=30,
                what="TJ's consumer to meet the three alerts again",
            )
        finally:
            consumer.stop()
        assert sorted(await _feed_ids(deploy)) == sorted(alerts)
        for alert_id in alerts:
            entries = await ledger_has(deploy, KG, type="alert_delivered", alert_id=alert_id)()
            assert [e["actor_node"] for e in entries] == [TJ]
        queue = SqlReceiptQueue(session_factory(tj.engine), node_id=TJ)
        assert await queue.unsent(100) == []  # every one marked sent


async def _delivered_again(deploy: Deployment, count: int) -> bool:
    return deploy.runtimes[TJ].delivery.counts["duplicate"] >= count
