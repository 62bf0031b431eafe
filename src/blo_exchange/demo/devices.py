"""``make run``'s device certificate: one demo terminal whose token works only with it.

The demo makes a terminal-device CA for the first demo node's agency under
``DATA_DIR/tls/devices-<agency>/`` (keys 0600), a device certificate from it, and a terminal of
that node bound to the certificate; the agency's nodes serve with ``BLO_CLIENT_CA_FILE`` set to
that CA, exactly as a deployment does with the agency's own CA. The credentials file names the
terminal's token and files (``device_terminal``). Every other demo terminal stays unbound, so the
walkthrough, the browser tests and the simulator need no certificate.

Not for production: there the agency's CA issues device certificates and an operator binds them
(``blo-exchange principals create --device-cert`` or ``principals bind-cert``).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from blo_exchange.crypto.certs import certificate_sha256
from blo_exchange.crypto.tls import demo_device_certificate, demo_pki
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import create_engine, session_factory
from blo_exchange.demo.directory import DEMO_NODES
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.services.auth import hash_token, new_token

__all__ = ["DEVICE_NODE", "with_device_terminal"]

DEVICE_NODE = DEMO_NODES[0]
DEVICE_NAME = "terminal-device"


async def with_device_terminal(
    data_dir: Path, database_url: str, credentials: dict[str, Any], *, now: datetime
) -> dict[str, Any]:
    """``credentials`` with the device terminal of :data:`DEVICE_NODE` (made on the first run;
    later runs bind it to the certificate again, which is renewed before it expires) and the
    client CA of its agency's nodes."""
    folder = data_dir / "tls" / f"devices-{DEVICE_NODE.agency_id}"
    ca_file = demo_pki(folder, [], hosts=[], now=now).ca_file
    cert_file, key_file = demo_device_certificate(folder, DEVICE_NAME, now=now)
    fingerprint = certificate_sha256(cert_file.read_bytes())
    entry: dict[str, Any] = credentials["nodes"][DEVICE_NODE.id]
    known = entry.get("device_terminal")
    engine = create_engine(database_url, pool_size=1)
    try:
        directory = SqlDirectory(session_factory(engine))
        if known is not None:
            await directory.bind_device_certificate(known["principal_id"], fingerprint)
            token, principal_id = known["token"], known["principal_id"]
        else:
            token, principal_id = new_token(), f"terminal-{secrets.token_hex(6)}"
            await directory.add_principal(
                Principal(
                    id=principal_id,
                    role=Role.TERMINAL,
                    node_id=DEVICE_NODE.id,
                    agency_id=DEVICE_NODE.agency_id,
                    label=f"{DEVICE_NODE.id} terminal with a device certificate",
                    created_at=now,
                    device_certificate=fingerprint,
                ),
                hash_token(token),
            )
    finally:
        await engine.dispose()
    entry["device_terminal"] = {
        "principal_id": principal_id,
        "token": token,
        "cert_file": str(cert_file),
        "key_file": str(key_file),
    }
    for node in DEMO_NODES:
        if node.agency_id == DEVICE_NODE.agency_id:
            credentials["nodes"][node.id]["client_ca_file"] = str(ca_file)
    return credentials
