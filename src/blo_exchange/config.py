"""Settings of a node, a ledger writer or the CLI, read from ``BLO_*`` environment variables.

Built by :func:`load_settings` when a process starts, never at import time, so tests and the demo
can build as many differently configured nodes in one process as they need.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from blo_exchange.errors import ConfigurationError

__all__ = ["Settings", "load_settings", "require_key_dir", "source_domains"]


class Settings(BaseSettings):
    """Everything a process needs to know about its place in a deployment."""

    model_config = SettingsConfigDict(env_prefix="BLO_", extra="ignore")

    node_id: str = Field(
        default="", description="This node's id in the directory (empty: no node)."
    )
    database_url: SecretStr = Field(
        default=SecretStr("postgresql+asyncpg://blo@127.0.0.1:5432/blo"),
        description="SQLAlchemy URL of this process's own database: a node's is its agency's "
        "(principals, inbox, idempotency, directory copy), the ledger writer's the ledger's.",
    )
    nats_url: SecretStr = Field(default=SecretStr("nats://127.0.0.1:4222"))
    nats_credentials: Path | None = Field(
        default=None, description="A NATS .creds file; None when the URL carries the credentials."
    )
    nats_nkey_file: Path | None = Field(
        default=None, description="This process's NATS user nkey seed, where NATS checks them."
    )
    nats_ca_file: Path | None = Field(
        default=None,
        description="CA certificate (PEM) the NATS servers' certificates are checked against; "
        "set, the connection speaks TLS.",
    )
    manage_bus: bool = Field(
        default=True,
        description="Create streams and this node's consumer; False where NATS permissions "
        "leave that to the operator (`blo-exchange nats provision`).",
    )
    stream_replicas: int = Field(
        default=1, ge=1, le=5, description="Replicas of each stream: 3 on the hub cluster (R3)."
    )
    stream_source_domains: str = Field(
        default="",
        description="Comma-separated JetStream domains of leaf sites whose alerts and receipts "
        "the streams source (store and forward); set on the hub's processes only.",
    )
    key_dir: Path | None = Field(
        default=None, description="Where this process's private keys live (required)."
    )
    pinned_roots_file: Path | None = Field(
        default=None,
        description="The agency root keys this process trusts (`blo-exchange agency pin`), on "
        "its own disk. Set: the directory is only what statements signed by those roots say. "
        "None: the database's directory tables are believed as they are (no protection "
        "against whoever can write them).",
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    tls_cert_file: Path | None = Field(
        default=None, description="The node's HTTPS certificate chain (PEM); required to serve."
    )
    tls_key_file: Path | None = Field(default=None, description="Its private key (PEM, 0600).")
    header_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a request's headers may take to arrive."
    )
    body_idle_timeout: float = Field(
        default=15.0, gt=0, description="Seconds a request body may stall without a byte."
    )
    allow_plain_http: bool = Field(
        default=False,
        description="Serve plain HTTP without a certificate: only on loopback behind a "
        "TLS-terminating proxy, or for tests. Off, `serve` refuses to start without TLS.",
    )
    suite: str = "MLKEM768-X25519/HKDF-SHA256/AES-256-GCM"
    nats_timeout: float = Field(default=5.0, description="Seconds to wait for a JetStream ack.")
    duplicate_window: float = Field(
        default=24 * 3600.0,
        description="Seconds JetStream remembers a Nats-Msg-Id, so retried publishes are dropped.",
    )
    stale_idempotency_seconds: float = Field(
        default=30.0,
        description="After this long a request still marked in progress is taken over by a retry.",
    )
    client_cert_header: str | None = Field(
        default=None,
        description="Header in which a TLS-terminating proxy forwards the verified client "
        "certificate (URL-encoded PEM, e.g. nginx's $ssl_client_escaped_cert); None: no mTLS.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses whose client_cert_header is believed."
    )
    admit_unbound_principals: bool = Field(
        default=True,
        description="Admit auditors and admins (bound to no agency) here; every node admits "
        "only its own terminals and its own agency's analysts whatever this says.",
    )
    log_json: bool = Field(default=True, description="Log JSON lines (False: plain text).")
    rate_limit: float = Field(
        default=20.0, description="Requests per second per principal (0: no limit)."
    )
    rate_burst: int = Field(default=200, description="Requests a principal may burst.")
    consumer_batch: int = 64
    ack_wait: float = Field(
        default=10.0,
        gt=0,
        description="Seconds JetStream waits for this node's ack before redelivering a message: "
        "how long alerts a crashed node had fetched wait for its restart. Handling is idempotent, "
        "so a batch slower than this is only handled twice, never lost.",
    )
    max_deliver: int = 20
    ready_max_backlog: int = Field(
        default=100,
        ge=0,
        description="Messages the delivery consumer may have waiting while /readyz still calls "
        "it caught up; more (a backlog draining after an outage) answers 503.",
    )
    ledger_origin: str = Field(default="blo-exchange.example/ledger")
    ledger_key_file: Path | None = None
    ledger_state_file: Path | None = Field(
        default=None,
        description="The ledger writer's own record of what it appended and signed "
        "(default: ledger.state beside the ledger key).",
    )
    run_witness: bool = Field(
        default=True,
        description="Witness the ledger: check each new checkpoint and cosign it (C2SP).",
    )
    run_ledger_writer: bool = Field(
        default=False, description="Run the ledger writer inside this node process as well."
    )
    client_ca_file: Path | None = Field(
        default=None,
        description="The agency's terminal-device CA bundle (PEM), pinned on this node's disk. "
        "Set: the node asks for a client certificate in its own TLS handshake, verifies it "
        "against this bundle (a chain that does not verify, or an expired certificate, ends the "
        "handshake) and ignores client_cert_header.",
    )
    require_terminal_certificates: bool = Field(
        default=False,
        description="Every terminal must present the device certificate bound to it with its "
        "token; an unbound terminal is refused. A bound principal needs its certificate anyway.",
    )
    retention_sweep_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How often the node erases nominal blocks whose retention ended "
        "(docs/retention.md).",
    )
    upload_dir: Path | None = Field(
        default=None,
        description="Where officers' uploads wait (0700, files 0600) until sealed with an alert; "
        "None: a directory named after the node under the system's temporary directory.",
    )
    attachment_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1, description="Largest attachment this node accepts."
    )
    attachment_types: str = Field(
        default="image/jpeg,image/png,image/webp,application/pdf",
        description="Media types this node accepts as attachments, comma-separated.",
    )
    attachment_max_files: int = Field(default=8, ge=0, le=16, description="Files per alert.")
    upload_ttl_hours: float = Field(
        default=24.0,
        gt=0,
        description="An upload not sealed with an alert this long after it began is deleted "
        "from the node's disk (its bytes are in clear there).",
    )
    attachment_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between passes that push this node's sealed attachments to the "
        "bucket and fetch the ones partners sent.",
    )
    consume_domain: str = Field(
        default="",
        description="JetStream domain whose streams this node's consumers read (alerts, "
        "receipts, directory); a leaf site's node sets the hub's (`hub`), so what partners "
        "sent while the link was down reaches it once the link is back. Empty: the local "
        "JetStream. Publishing always goes to the local one.",
    )
    ledger_database_url: SecretStr | None = Field(
        default=None,
        description="A node's URL of the ledger's database, under its agency's witness role "
        "(reads for auditors, witness cosignatures); None: the ledger is in BLO_DATABASE_URL's "
        "database (one database for everything).",
    )


def source_domains(settings: Settings) -> tuple[str, ...]:
    """``BLO_STREAM_SOURCE_DOMAINS`` as a tuple of domain names."""
    return tuple(d.strip() for d in settings.stream_source_domains.split(",") if d.strip())


def require_key_dir(settings: Settings) -> Path:
    """The key directory. No default: keys must never land in whatever the cwd happens to be."""
    if settings.key_dir is None:
        raise ConfigurationError("set BLO_KEY_DIR to the directory holding this process's keys")
    return settings.key_dir


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and explicit overrides, which win)."""
    return Settings(**overrides)  # type: ignore[arg-type]
