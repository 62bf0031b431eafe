"""Device certificates verified by the node itself, as a second factor with the token, on a real
node server (HTTPS as ``serve`` runs it, ``BLO_CLIENT_CA_FILE`` set): a bound token needs its own
certificate, a certificate from another CA or an expired one ends the handshake, another
principal's certificate or an unbound one is refused, and a proxy header is ignored."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from typer.testing import CliRunner, Result

from blo_exchange.cli.main import app
from blo_exchange.crypto.certs import certificate_sha256
from blo_exchange.crypto.tls import client_context, demo_device_certificate, demo_pki
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.errors import Conflict
from blo_exchange.services.auth import certificate_credential, hash_token, new_token
from tests.integration.pipeline import Deployment, deployment
from tests.integration.served import served

KG = "blo-karamyk-kg"
HEADER = "x-client-cert"


@dataclass
class Node:
    url: str
    ca_file: Path
    devices: Path
    tokens: dict[str, str]
    deploy: Deployment

    def client(self, device: str | None = None, *, devices: Path | None = None) -> Any:
        """An HTTPS client of the node presenting ``device``'s certificate (or none)."""
        folder = devices or self.devices
        cert = None if device is None else folder / f"{device}.pem"
        key = None if device is None else folder / f"{device}.key"
        verify = client_context(self.ca_file, cert_file=cert, key_file=key)
        return httpx.AsyncClient(base_url=self.url, verify=verify, timeout=5.0)

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def bound_terminal(
    deploy: Deployment, name: str, fingerprint: str | None, *, token: str | None = None
) -> str:
    """A KG terminal principal bound to ``fingerprint``; returns its token (or credential)."""
    node = deploy.runtimes[KG].node
    credential = token or new_token()
    await deploy.runtimes[KG].directory.add_principal(
        Principal(
            id=f"terminal-{name}",
            role=Role.TERMINAL,
            node_id=node.id,
            agency_id=node.agency_id,
            label=name,
            created_at=dt.datetime.now(dt.UTC),
            device_certificate=fingerprint,
        ),
        hash_token(credential),
    )
    return credential


def fingerprint(cert_file: Path) -> str:
    return certificate_sha256(cert_file.read_bytes())


@pytest.fixture
async def node(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Node]:
    now = dt.datetime.now(dt.UTC)
    pki = demo_pki(tmp_path / "tls", [KG], hosts=["127.0.0.1"], now=now)
    devices = tmp_path / "devices"
    demo_pki(devices, [], hosts=[], now=now)  # the agency's terminal-device CA
    for device in ("device-a", "device-b", "stray"):
        demo_device_certificate(devices, device, now=now)
    demo_device_certificate(
        devices, "expired", now=now, not_before=now - dt.timedelta(days=3), days=1
    )
    async with deployment(database_url, nats_url, tmp_path / "keys") as deploy:
        tokens = {
            "a": await bound_terminal(deploy, "a", fingerprint(devices / "device-a.pem")),
            "b": await bound_terminal(deploy, "b", fingerprint(devices / "device-b.pem")),
            "expired": await bound_terminal(deploy, "old", fingerprint(devices / "expired.pem")),
            "unbound": deploy.seed.terminal_tokens[KG],
        }
        cert_file, key_file = pki.certificates[KG]
        settings = deploy.runtimes[KG].settings.model_copy(
            update={
                "tls_cert_file": cert_file,
                "tls_key_file": key_file,
                "client_ca_file": devices / "ca.pem",
                # The proxy mode configured too, with this very address as the proxy: ignored.
                "client_cert_header": HEADER,
                "trusted_proxies": ["127.0.0.1"],
            }
        )
        async with served(settings, deploy.runtimes[KG].services) as port:
            yield Node(f"https://127.0.0.1:{port}", pki.ca_file, devices, tokens, deploy)


async def post_alert(client: httpx.AsyncClient, headers: dict[str, str], key: str) -> Any:
    return await client.post(
        "/v1/alerts", json=EXAMPLE_SEIZURE, headers=headers | {"Idempotency-Key": key}
    )


async def test_a_bound_token_works_only_with_its_own_device_certificate(node: Node) -> None:
    async with node.client("device-a") as device_a:
        accepted = await post_alert(device_a, node.bearer("a"), "device-a-1")
        assert accepted.status_code == 202, accepted.text
        # Another principal's token from device A: B is bound to device B, not A.
        wrong = await post_alert(device_a, node.bearer("b"), "device-a-2")
        assert wrong.status_code == 401, wrong.text
        assert "not the device certificate" in wrong.json()["detail"]
        # An unbound terminal's token still works from a device (no binding, no requirement).
        unbound = await device_a.get("/v1/directory", headers=node.bearer("unbound"))
        assert unbound.status_code == 200
    async with node.client() as bare:
        alone = await post_alert(bare, node.bearer("a"), "device-a-3")
        assert alone.status_code == 401
        assert alone.headers["content-type"] == "application/problem+json"
        assert "bound to a device certificate" in alone.json()["detail"]
        # The unbound terminal needs none.
        assert (await bare.get("/v1/directory", headers=node.bearer("unbound"))).status_code == 200
    async with node.client("stray") as stray:  # the agency CA's, but bound to no one
        unbound_cert = await post_alert(stray, node.bearer("a"), "device-a-4")
        assert unbound_cert.status_code == 401
        # Nor is a certificate alone a credential, unless it was registered as one.
        assert (await stray.get("/v1/directory")).status_code == 401


async def test_certificates_the_tls_layer_does_not_verify_end_the_handshake(
    node: Node, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    rogue = tmp_path / "rogue"
    demo_pki(rogue, [], hosts=[], now=now)  # another CA, issuing a certificate "device-a"
    cert_file, _ = demo_device_certificate(rogue, "device-a", now=now)
    # Bind A's token to the rogue certificate's fingerprint too: only the chain stops it.
    rogue_token = await bound_terminal(node.deploy, "rogue", fingerprint(cert_file))
    async with node.client("device-a", devices=rogue) as forged:
        with pytest.raises(httpx.TransportError):
            await forged.get("/v1/directory", headers={"Authorization": f"Bearer {rogue_token}"})
    async with node.client("expired") as expired:
        with pytest.raises(httpx.TransportError):
            await expired.get("/v1/directory", headers=node.bearer("expired"))
    # Why they fail (the server closes without an alert the client could read) is shown by
    # tests/unit/crypto/test_crypto_tls.py.


async def test_a_proxy_header_is_ignored_when_the_node_verifies_certificates(node: Node) -> None:
    pem = (node.devices / "device-a.pem").read_text()
    forwarded = {HEADER: quote(pem)}
    # A principal whose only credential is device A's certificate, as `principals create --cert`.
    await bound_terminal(
        node.deploy,
        "cert-only",
        None,
        token=certificate_credential(fingerprint(node.devices / "device-a.pem")),
    )
    async with node.client() as bare:
        # From 127.0.0.1, the configured "proxy": still not a certificate without the handshake.
        spoofed = await post_alert(bare, node.bearer("a") | forwarded, "spoofed-header-1")
        assert spoofed.status_code == 401, spoofed.text
        assert "bound to a device certificate" in spoofed.json()["detail"]
        assert (await bare.get("/v1/directory", headers=forwarded)).status_code == 401
    async with node.client("device-a") as device_a:
        # The same certificate in the handshake is the credential of the cert-only principal.
        assert (await device_a.get("/v1/directory")).status_code == 200


async def test_web_sign_in_and_its_session_need_the_device_certificate_too(node: Node) -> None:
    async with node.client() as bare:
        refused = await sign_in(bare, node.tokens["a"])
        assert refused.status_code == 401
        assert "works only from its own device" in refused.text
    async with node.client("device-b") as other_device:
        assert (await sign_in(other_device, node.tokens["a"])).status_code == 401
    async with node.client("device-a") as device_a:
        signed_in = await sign_in(device_a, node.tokens["a"])
        assert signed_in.status_code == 303, signed_in.text
        home = await device_a.get(signed_in.headers["location"])
        assert home.status_code == 200
        cookies = device_a.cookies
    async with node.client() as thief:  # the session cookie, on a connection without the device
        thief.cookies = cookies
        stolen = await thief.get(signed_in.headers["location"])
        assert stolen.status_code == 303
        assert stolen.headers["location"].startswith("/sign-in")


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]*)"', form.text)
    assert csrf is not None
    return await client.post("/sign-in", data={"token": token, "csrf": csrf.group(1)})


async def test_operators_bind_and_officers_present_device_certificates_with_the_cli(
    node: Node, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLO_DATABASE_URL", database_url)
    runner = CliRunner()

    async def cli(*args: str, env: dict[str, str] | None = None) -> Result:
        return await asyncio.to_thread(runner.invoke, app, list(args), env=env)

    officer_cert, officer_key = demo_device_certificate(
        node.devices, "officer", now=dt.datetime.now(dt.UTC)
    )
    created = await cli(
        "principals", "create", "--role", "terminal", "--label", "officer", "--node", KG,
        "--device-cert", str(officer_cert),
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    token = created.output.strip()
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(json.dumps(EXAMPLE_SEIZURE))
    send = ("alerts", "send", str(alert_file), "--url", node.url, "--token", token)
    ca = ("--ca", str(node.ca_file))
    sent = await cli(*send, *ca, "--cert", str(officer_cert), "--cert-key", str(officer_key))
    assert sent.exit_code == 0, sent.output
    refused = await cli(*send, *ca)  # the token alone
    assert refused.exit_code == 1
    assert "device certificate" in refused.output
    from_env = await cli(
        "terminal", "send", str(alert_file), "--outbox", str(tmp_path / "outbox.sqlite3"),
        "--url", node.url, "--token", token, "--key", "terminal-outbox-1", *ca,
        env={"BLO_CLIENT_CERT": str(officer_cert), "BLO_CLIENT_KEY": str(officer_key)},
    )  # fmt: skip
    assert from_env.exit_code == 0, from_env.output
    assert "accepted 1" in from_env.output

    # Rebinding terminal A to another device: A's old device no longer works with its token.
    rebound = await cli("principals", "bind-cert", "terminal-a", str(node.devices / "stray.pem"))
    assert rebound.exit_code == 0, rebound.output
    taken = await cli("principals", "bind-cert", "terminal-a", str(node.devices / "device-b.pem"))
    assert isinstance(taken.exception, Conflict)  # `main` prints it and exits 2
    assert "bound to another principal" in str(taken.exception)
    listing = (await cli("directory", "principals")).output.splitlines()
    stray = fingerprint(node.devices / "stray.pem")
    assert [line.split("\t")[-1] for line in listing if line.startswith("terminal-a\t")] == [
        f"device:{stray}"
    ]
    node.deploy.invalidate_directories()
    async with node.client("device-a") as old_device:
        assert (await old_device.get("/v1/directory", headers=node.bearer("a"))).status_code == 401
    async with node.client("stray") as new_device:
        assert (await new_device.get("/v1/directory", headers=node.bearer("a"))).status_code == 200
