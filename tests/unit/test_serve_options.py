"""``blo-exchange serve``'s uvicorn options: HTTPS or an explicit opt-out, never proxy headers."""

from __future__ import annotations

import datetime as dt
import gc
import ssl
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
import typer

from blo_exchange.api.client_certificates import PeerCertificateProtocol
from blo_exchange.api.slow_clients import guarded_protocol
from blo_exchange.cli.main import server_options
from blo_exchange.config import Settings
from blo_exchange.crypto.tls import demo_pki


def test_no_certificate_no_server() -> None:
    with pytest.raises(typer.Exit):
        server_options(Settings())
    assert server_options(Settings(allow_plain_http=True))["proxy_headers"] is False


def test_tls_12_or_later_with_forward_secret_aead_suites(tmp_path: Path) -> None:
    pki = demo_pki(tmp_path, ["node"], hosts=["127.0.0.1"], now=dt.datetime.now(dt.UTC))
    cert, key = pki.certificates["node"]
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    options = server_options(Settings(tls_cert_file=cert, tls_key_file=key))
    assert options["proxy_headers"] is False
    context = options["ssl_context_factory"](None, None)
    assert isinstance(context, ssl.SSLContext)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    assert all(name.startswith("ECDHE-") for name in tls12)
    assert all("GCM" in name or "CHACHA20" in name for name in tls12)
    # No client CA: no client certificate is asked for.
    assert context.verify_mode == ssl.CERT_NONE


def test_a_client_ca_asks_for_device_certificates_and_needs_the_nodes_own_tls(
    tmp_path: Path,
) -> None:
    now = dt.datetime.now(dt.UTC)
    pki = demo_pki(tmp_path / "tls", ["node"], hosts=["127.0.0.1"], now=now)
    devices = demo_pki(tmp_path / "devices", [], hosts=[], now=now)
    cert, key = pki.certificates["node"]
    options = server_options(
        Settings(tls_cert_file=cert, tls_key_file=key, client_ca_file=devices.ca_file)
    )
    context = options["ssl_context_factory"](None, None)
    assert context.verify_mode == ssl.CERT_OPTIONAL  # a token-only client still connects
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("organizationName", "blo-exchange demo"),), (("commonName", "blo-exchange demo CA"),))
    ]
    assert issubclass(options["http"], PeerCertificateProtocol)
    # Behind a TLS-terminating proxy the node never sees a handshake to verify.
    with pytest.raises(typer.Exit):
        server_options(Settings(allow_plain_http=True, client_ca_file=devices.ca_file))


def test_serve_guards_the_httptools_parser_when_it_is_installed() -> None:
    """The deadlines against slow clients ride on the parser ``serve`` actually uses: httptools
    (a dependency since issue 14), not uvicorn's "auto" choice of an unguarded one."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from blo_exchange.api.slow_clients import GuardedH11Protocol

    protocol = server_options(Settings(allow_plain_http=True))["http"]
    assert issubclass(protocol, HttpToolsProtocol)
    assert protocol.header_seconds == Settings().header_timeout
    h11 = guarded_protocol(header_seconds=1, body_idle_seconds=2, parser="h11")
    assert issubclass(h11, GuardedH11Protocol)


def test_serve_freezes_the_heap_after_building_the_app_and_before_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full collection would otherwise walk start-up's ~190,000 objects, the loop standing
    still for 120 to 250 ms under load (issue 14): ``serve`` leaves them out of collections."""
    import uvicorn

    from blo_exchange.bootstrap import app as bootstrap_app
    from blo_exchange.cli import main

    built = object()
    frozen: dict[str, int] = {}

    def create_app(settings: Settings) -> object:
        frozen["at build"] = gc.get_freeze_count()
        return built

    def run(app: object, **options: object) -> None:
        assert app is built
        frozen["at run"] = gc.get_freeze_count()

    gc.unfreeze()
    monkeypatch.setattr(main, "_configure_logging", lambda: None)
    monkeypatch.setattr(main, "load_settings", lambda: Settings(allow_plain_http=True))
    monkeypatch.setattr(bootstrap_app, "create_app", create_app)
    monkeypatch.setattr(uvicorn, "run", run)
    try:
        main.serve(host=None, port=None)
    finally:
        gc.unfreeze()  # this test process keeps its collector as it was
    assert frozen["at build"] == 0
    assert frozen["at run"] > 0


def test_the_ledger_writer_freezes_the_heap_before_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from blo_exchange.cli import main

    frozen: list[int] = []

    def run(work: Coroutine[Any, Any, None]) -> None:
        work.close()  # the writer itself is not started here
        frozen.append(gc.get_freeze_count())

    gc.unfreeze()
    monkeypatch.setattr(main, "_configure_logging", lambda: None)
    monkeypatch.setattr(main, "load_settings", Settings)
    monkeypatch.setattr(main.asyncio, "run", run)
    try:
        main.ledger_writer()
    finally:
        gc.unfreeze()
    assert len(frozen) == 1
    assert frozen[0] > 0
