"""The node's TLS contexts in memory (no sockets): with a client CA, a device certificate of that
CA passes, and one of another CA, an expired one or a server certificate is refused by the
server's own verification, each for its reason; no certificate at all still connects."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest

from blo_exchange.crypto.tls import (
    client_context,
    demo_device_certificate,
    demo_pki,
    server_context,
)

NOW = dt.datetime.now(dt.UTC)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLObject:
    """Run a TLS handshake between the two contexts over memory BIOs; the server's SSLObject,
    whose SSLError (if any) propagates."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side, out, peer_in in (("client", c, c_out, s_in), ("server", s, s_out, c_in)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            return s
    raise AssertionError("handshake did not finish")


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    node = demo_pki(tmp_path / "tls", ["node"], hosts=["127.0.0.1"], now=NOW)
    devices, rogue = tmp_path / "devices", tmp_path / "rogue"
    demo_pki(devices, [], hosts=[], now=NOW)
    demo_pki(rogue, [], hosts=[], now=NOW)
    demo_device_certificate(devices, "good", now=NOW)
    demo_device_certificate(rogue, "rogue", now=NOW)
    demo_device_certificate(
        devices, "expired", now=NOW, not_before=NOW - dt.timedelta(days=3), days=1
    )
    cert, key = node.certificates["node"]
    return {"ca": node.ca_file, "cert": cert, "key": key, "devices": devices, "rogue": rogue}


def server(pki: dict[str, Path]) -> ssl.SSLContext:
    return server_context(pki["cert"], pki["key"], client_ca_file=pki["devices"] / "ca.pem")


def device(pki: dict[str, Path], folder: str, name: str) -> ssl.SSLContext:
    base = pki[folder]
    return client_context(pki["ca"], cert_file=base / f"{name}.pem", key_file=base / f"{name}.key")


def test_a_device_certificate_of_the_pinned_ca_is_verified_and_seen(pki: dict[str, Path]) -> None:
    accepted = handshake(server(pki), device(pki, "devices", "good"))
    assert accepted.getpeercert(binary_form=True) == ssl.PEM_cert_to_DER_cert(
        (pki["devices"] / "good.pem").read_text()
    )


def test_no_certificate_still_connects_without_a_peer_certificate(pki: dict[str, Path]) -> None:
    accepted = handshake(server(pki), client_context(pki["ca"]))
    assert accepted.getpeercert(binary_form=True) is None


@pytest.mark.parametrize(
    ("folder", "name", "reason"),
    [
        # Another CA under the same name as the pinned one: its signature does not verify.
        ("rogue", "rogue", "certificate signature failure"),
        ("devices", "expired", "certificate has expired"),
    ],
)
def test_certificates_the_pinned_ca_does_not_vouch_for_are_refused(
    pki: dict[str, Path], folder: str, name: str, reason: str
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        handshake(server(pki), device(pki, folder, name))
    assert refused.value.verify_message == reason


def test_a_server_certificate_is_not_a_device_certificate(pki: dict[str, Path]) -> None:
    """The node's own certificate (serverAuth only), even from a CA the server trusted."""
    both = server_context(pki["cert"], pki["key"], client_ca_file=pki["ca"])
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        handshake(both, client_context(pki["ca"], cert_file=pki["cert"], key_file=pki["key"]))
    assert refused.value.verify_message == "unsuitable certificate purpose"
