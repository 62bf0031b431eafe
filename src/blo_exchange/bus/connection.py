"""A node's connection to NATS JetStream, and publishing that waits for the stream's ack."""

from __future__ import annotations

import contextlib
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import Error as JsError

from blo_exchange.errors import BusError

BUS_ERRORS: tuple[type[Exception], ...] = (NatsError, JsError)
"""What the NATS client raises where nothing wrapped it in :class:`BusError`."""

__all__ = ["BUS_ERRORS", "BusConnection", "PublishAck", "connect"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishAck:
    stream: str
    seq: int
    duplicate: bool


class BusConnection:
    """Wraps one nats-py client. Built in an app's lifespan or a command, never at import."""

    def __init__(self, client: Client, *, timeout: float) -> None:
        self.client = client
        self.js: JetStreamContext = client.jetstream(timeout=timeout)
        self._timeout = timeout

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected)

    def in_domain(self, domain: str) -> BusConnection:
        """The same connection, its JetStream calls addressed to ``domain`` (``$JS.<domain>.API``):
        a leaf site's node reading the hub's streams. Close the original, not this view."""
        view = BusConnection(self.client, timeout=self._timeout)
        view.js = self.client.jetstream(domain=domain, timeout=self._timeout)
        return view

    async def publish(self, subject: str, payload: bytes, *, msg_id: str) -> PublishAck:
        """Publish and wait for JetStream's ack (durable, given ``sync_interval: always``).

        ``Nats-Msg-Id`` makes a retried publish of the same id inside the duplicate window a
        no-op whose ack names the original sequence.
        """
        try:
            ack = await self.js.publish(
                subject, payload, timeout=self._timeout, headers={"Nats-Msg-Id": msg_id}
            )
        except (NatsError, JsError, TimeoutError) as exc:
            raise BusError(f"JetStream did not acknowledge {subject}: {exc!r}") from exc
        return PublishAck(stream=ack.stream, seq=int(ack.seq), duplicate=bool(ack.duplicate))

    async def close(self) -> None:
        if not self.client.is_closed:
            try:
                await self.client.drain()
            except (NatsError, OSError):  # NATS is down: nothing to drain, just let go
                with contextlib.suppress(NatsError, OSError):
                    await self.client.close()


async def connect(
    url: str,
    *,
    name: str,
    credentials: Path | None = None,
    nkey_seed_file: Path | None = None,
    inbox_prefix: str | None = None,
    tls_ca_file: Path | None = None,
    timeout: float = 5.0,
) -> BusConnection:
    """Connect, reconnecting forever afterwards: a border post's link may drop for hours.

    ``url`` may name several servers of a cluster, comma-separated; the client picks one and
    fails over to the others.

    ``nkey_seed_file`` authenticates as a NATS user nkey; ``inbox_prefix`` is where replies come,
    the only subjects such a user may subscribe to. ``tls_ca_file``: speak TLS and check the
    server's certificate against this CA (the system's CAs when the URL is ``tls://``).
    """

    async def _disconnected() -> None:
        log.warning("nats disconnected", extra={"client": name})

    async def _reconnected() -> None:
        log.info("nats reconnected", extra={"client": name})

    async def _error(exc: Exception) -> None:
        log.warning("nats error: %s", type(exc).__name__, extra={"client": name})

    options: dict[str, object] = {
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": timeout,
        "disconnected_cb": _disconnected,
        "reconnected_cb": _reconnected,
        "error_cb": _error,
    }
    if credentials is not None:
        options["user_credentials"] = str(credentials)
    if nkey_seed_file is not None:
        options["nkeys_seed"] = str(nkey_seed_file)
    if inbox_prefix is not None:
        options["inbox_prefix"] = inbox_prefix
    if tls_ca_file is not None:
        options["tls"] = ssl.create_default_context(cafile=str(tls_ca_file))
    try:
        servers = [server.strip() for server in url.split(",") if server.strip()]
        client = await nats.connect(servers if len(servers) > 1 else url, **options)
    except (NatsError, OSError, TimeoutError) as exc:
        raise BusError(f"cannot connect to NATS: {type(exc).__name__}") from exc
    return BusConnection(client, timeout=timeout)
