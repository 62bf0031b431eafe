"""Mutual TLS through a TLS-terminating proxy: the proxy verifies the client certificate and
forwards it; the node maps the certificate's SHA-256 to a principal (or checks it as a bound
token's second factor), and believes the header only from the proxy's real address. The node's
own verification is tests/integration/test_device_certificates.py."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from blo_exchange.bootstrap.app import create_app
from blo_exchange.crypto.certs import certificate_sha256
from blo_exchange.crypto.tls import demo_pki
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.services.auth import certificate_credential, hash_token, new_token
from tests.integration.pipeline import Deployment, deployment
from tests.integration.served import served

KG = "blo-karamyk-kg"
HEADER = "x-client-cert"


def certificate(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


def client(deploy: Deployment, *, trusted: list[str]) -> httpx.AsyncClient:
    runtime = deploy.runtimes[KG]
    settings = runtime.settings.model_copy(
        update={"client_cert_header": HEADER, "trusted_proxies": trusted}
    )
    # httpx's ASGI transport presents the client as 127.0.0.1.
    transport = httpx.ASGITransport(app=create_app(settings, services=runtime.services))
    return httpx.AsyncClient(transport=transport, base_url="http://kg.test")


async def add_terminal(
    deploy: Deployment, principal_id: str, token_hash: bytes, *, device: bytes | None = None
) -> None:
    """A KG terminal whose credential hashes to ``token_hash``, bound to ``device`` (a PEM)."""
    node = deploy.runtimes[KG].node
    await deploy.runtimes[KG].directory.add_principal(
        Principal(
            id=principal_id,
            role=Role.TERMINAL,
            node_id=node.id,
            agency_id=node.agency_id,
            label="terminal bound to a device" if device else "terminal with a certificate",
            created_at=dt.datetime.now(dt.UTC),
            device_certificate=None if device is None else certificate_sha256(device),
        ),
        token_hash,
    )


async def test_a_registered_certificate_through_the_proxy_is_a_principal(
    deploy: Deployment,
) -> None:
    pem = certificate("karamyk-terminal-1")
    await add_terminal(
        deploy, "terminal-cert-1", hash_token(certificate_credential(certificate_sha256(pem)))
    )
    forwarded = {HEADER: quote(pem.decode())}
    async with client(deploy, trusted=["127.0.0.1"]) as kg:
        first = await kg.get("/v1/directory", headers=forwarded)
        assert first.status_code == 200, first.text
        stranger = {HEADER: quote(certificate("someone-else").decode())}
        assert (await kg.get("/v1/directory", headers=stranger)).status_code == 401
        garbage = await kg.get("/v1/directory", headers={HEADER: "not-a-certificate"})
        assert garbage.status_code == 401
        # A bearer token still works beside it.
        assert (await kg.get("/v1/directory", headers=deploy.terminal(KG))).status_code == 200
    async with client(deploy, trusted=["10.9.9.9"]) as untrusted:
        # Anyone can send the header; only the proxy's is believed.
        response = await untrusted.get("/v1/directory", headers=forwarded)
        assert response.status_code == 401
        assert "trusted proxy" in response.json()["detail"]
    # Without mTLS configured, the header means nothing.
    plain = await deploy.client(KG).get("/v1/directory", headers=forwarded)
    assert plain.status_code == 401


async def test_a_bound_token_needs_its_certificate_from_the_proxy(deploy: Deployment) -> None:
    """Proxy mode with a device-bound token: the forwarded certificate is its second factor."""
    pem = certificate("karamyk-terminal-3")
    token = new_token()
    await add_terminal(deploy, "terminal-bound-3", hash_token(token), device=pem)
    bearer = {"Authorization": f"Bearer {token}"}
    forwarded = {HEADER: quote(pem.decode())}
    async with client(deploy, trusted=["127.0.0.1"]) as kg:
        assert (await kg.get("/v1/directory", headers=bearer | forwarded)).status_code == 200
        alone = await kg.get("/v1/directory", headers=bearer)
        assert alone.status_code == 401
        assert "device certificate" in alone.json()["detail"]
        other = {HEADER: quote(certificate("someone-else").decode())}
        assert (await kg.get("/v1/directory", headers=bearer | other)).status_code == 401
    async with client(deploy, trusted=["10.9.9.9"]) as untrusted:
        spoofed = await untrusted.get("/v1/directory", headers=bearer | forwarded)
        assert spoofed.status_code == 401
        assert "trusted proxy" in spoofed.json()["detail"]


async def test_a_forwarded_for_header_does_not_make_a_local_caller_the_proxy(
    deploy: Deployment, tmp_path: Path
) -> None:
    """On a real node server (HTTPS, as ``serve`` runs it): a local process that sends the
    certificate header and ``X-Forwarded-For: <proxy>`` is still itself, not the proxy."""
    pem = certificate("karamyk-terminal-2")
    await add_terminal(
        deploy, "terminal-cert-2", hash_token(certificate_credential(certificate_sha256(pem)))
    )
    pki = demo_pki(tmp_path / "tls", [KG], hosts=["127.0.0.1"], now=dt.datetime.now(dt.UTC))
    cert_file, key_file = pki.certificates[KG]
    settings = deploy.runtimes[KG].settings.model_copy(
        update={
            "client_cert_header": HEADER,
            "trusted_proxies": ["10.9.9.9"],
            "tls_cert_file": cert_file,
            "tls_key_file": key_file,
        }
    )
    async with served(settings, deploy.runtimes[KG].services) as port:
        verify = ssl.create_default_context(cafile=str(pki.ca_file))
        async with httpx.AsyncClient(verify=verify, timeout=5.0) as client_:
            spoofed = await client_.get(
                f"https://127.0.0.1:{port}/v1/directory",
                headers={HEADER: quote(pem.decode()), "X-Forwarded-For": "10.9.9.9"},
            )
            assert spoofed.status_code == 401, spoofed.text
            assert "trusted proxy" in spoofed.json()["detail"]
            hsts = await client_.get(f"https://127.0.0.1:{port}/livez")
            assert hsts.headers["strict-transport-security"] == "max-age=31536000"
