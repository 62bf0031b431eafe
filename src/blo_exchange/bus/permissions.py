"""Who may do what on NATS: one user per node (nkey), one for the ledger writer, one operator.

The server enforces it, so a compromised node can't publish for a border pair it does not serve,
read another node's consumer, or delete or purge a stream, whatever its code does:

- a **node** may publish alerts (both lanes) and receipts of its own border pairs and its audit
  records, read its own durable consumers (of live and bulk alerts, and of re-share records;
  pre-created by the operator with the node's filters, since a consumer's filter is in the
  request body, not the subject the server checks) and ack them, and read stream info. Its
  replies come on an inbox prefix only it may subscribe to. In the attachment bucket it may
  publish chunks only under its own id (``bus.objects``), object info (never believed by a
  reader), and read any message by sequence: every object is ciphertext, opened only with a key
  the envelope gave.
- the **ledger writer** may manage streams (create, update, info — never delete or purge), run
  its own consumers, and publish checkpoints.
- the **operator** may read everything and manage consumers, and may not delete or purge.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from blo_exchange.bus.consumers import (
    directory_consumer_permissions,
    node_consumer_permissions,
    reshare_consumer_permissions,
)
from blo_exchange.bus.streams import (
    ALL_STREAMS,
    ATTACHMENTS_BUCKET,
    ATTACHMENTS_STREAM,
    DIRECTORY_STREAM,
)
from blo_exchange.crypto.nkeys import new_user_seed, public_nkey, write_seed_file
from blo_exchange.domain.directory import Node
from blo_exchange.domain.subjects import BULK_TOKEN

__all__ = [
    "LEDGER_WRITER_USER",
    "NatsAuth",
    "inbox_prefix",
    "node_consumer_name",
    "prepare_nats_auth",
    "render_authorization",
]

LEDGER_WRITER_USER = "ledger-writer"
OPERATOR_USER = "operator"
JS = "$JS.API"
NEVER = [f"{JS}.STREAM.DELETE.>", f"{JS}.STREAM.PURGE.>", f"{JS}.STREAM.MSG.DELETE.>"]


def node_consumer_name(node_id: str) -> str:
    return f"node-{node_id}"


def inbox_prefix(user: str) -> str:
    """Each user's replies arrive under its own prefix, which only it may subscribe to."""
    return f"_INBOX_{user}"


def _node_permissions(node: Node) -> dict[str, object]:
    publish = [f"blo.v1.alerts.{pair}.*" for pair in node.border_pairs]
    publish += [f"blo.v1.alerts.{pair}.*.{BULK_TOKEN}" for pair in node.border_pairs]
    publish += [f"blo.v1.receipts.{pair}" for pair in node.border_pairs]
    publish += [
        "blo.v1.ledger.queries",
        f"{JS}.INFO",
        *(f"{JS}.STREAM.INFO.{s.name}" for s in ALL_STREAMS),
        *node_consumer_permissions(node),
        *reshare_consumer_permissions(node),
        *directory_consumer_permissions(node),
        f"$O.{ATTACHMENTS_BUCKET}.C.{node.id}.*",
        f"$O.{ATTACHMENTS_BUCKET}.M.*",
        f"{JS}.DIRECT.GET.{ATTACHMENTS_STREAM.name}",
        # The whole directory stream, read at start to rebuild the node's copy.
        f"{JS}.STREAM.MSG.GET.{DIRECTORY_STREAM.name}",
    ]
    return {
        "publish": {"allow": publish, "deny": NEVER},
        "subscribe": {"allow": [f"{inbox_prefix(node.id)}.>"]},
    }


def _ledger_writer_permissions() -> dict[str, object]:
    # The ledger writer is the log's sequencer and trusted with the streams' set-up; it still
    # may not delete or purge anything.
    managed = [s.name for s in ALL_STREAMS]
    publish = [
        "blo.v1.ledger.checkpoints",
        f"{JS}.INFO",
        *(
            f"{JS}.STREAM.{verb}.{name}"
            for name in managed
            for verb in ("CREATE", "UPDATE", "INFO")
        ),
        f"{JS}.STREAM.MSG.GET.{DIRECTORY_STREAM.name}",
        f"{JS}.CONSUMER.>",
        "$JS.ACK.>",
    ]
    return {
        "publish": {"allow": publish, "deny": NEVER},
        "subscribe": {"allow": [f"{inbox_prefix(LEDGER_WRITER_USER)}.>"]},
    }


def render_authorization(
    nodes: Iterable[tuple[Node, str]], *, ledger_writer_nkey: str, operator_password: str
) -> str:
    """The server's ``authorization`` block: ``(node, public nkey)`` pairs and the two others."""
    users: list[dict[str, object]] = [
        {"nkey": nkey, "permissions": _node_permissions(node)} for node, nkey in nodes
    ]
    users.append({"nkey": ledger_writer_nkey, "permissions": _ledger_writer_permissions()})
    users.append(
        {
            "user": OPERATOR_USER,
            "password": operator_password,
            "permissions": {"publish": {"allow": [">"], "deny": NEVER}, "subscribe": ">"},
        }
    )
    # NATS config accepts JSON syntax; json.dumps quotes every subject and key safely.
    return "authorization " + json.dumps({"users": users}, indent=2) + "\n"


@dataclass(frozen=True)
class NatsAuth:
    config: str  # the authorization block for the server's config
    node_seed_files: dict[str, Path]
    ledger_writer_seed_file: Path
    operator_password: str

    def operator_url(self, url: str) -> str:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{OPERATOR_USER}:{self.operator_password}@{rest}"


def prepare_nats_auth(nodes: Sequence[Node], key_root: Path) -> NatsAuth:
    """Create (once) each node's and the ledger writer's nkey seed under ``key_root/<name>/``
    and the operator's password, and render the server's authorization block for them."""

    def seed_at(path: Path) -> str:
        if not path.exists():
            write_seed_file(path, new_user_seed())
        return path.read_text().strip()

    node_files = {node.id: key_root / node.id / "nats.nk" for node in nodes}
    ledger_file = key_root / LEDGER_WRITER_USER / "nats.nk"
    password_file = key_root / "nats-operator.password"
    if not password_file.exists():
        write_seed_file(password_file, secrets.token_urlsafe(24))
    password = password_file.read_text().strip()
    config = render_authorization(
        [(node, public_nkey(seed_at(node_files[node.id]))) for node in nodes],
        ledger_writer_nkey=public_nkey(seed_at(ledger_file)),
        operator_password=password,
    )
    return NatsAuth(
        config=config,
        node_seed_files=node_files,
        ledger_writer_seed_file=ledger_file,
        operator_password=password,
    )
