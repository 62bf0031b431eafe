"""Signed directory statements: signatures by pinned roots, co-signing, and every way to fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blo_exchange.crypto.canonical import b64u_decode, canonical_json
from blo_exchange.crypto.keys import SigningKey
from blo_exchange.crypto.roots import (
    create_root_key,
    load_pinned_roots,
    load_root_key,
    write_pinned_roots,
)
from blo_exchange.crypto.statements import (
    STATEMENT_CONTEXT,
    UnverifiedStatement,
    cosign_statement,
    sign_statement,
)
from blo_exchange.errors import ConfigurationError, InvalidStatement

BODY = {"type": "agreement", "issued_at": "2026-12-01T00:00:00Z", "agreement": {"id": "a"}}
KG, TJ = "kg-border-service", "tj-drug-control-agency"


def reason(excinfo: pytest.ExceptionInfo[InvalidStatement]) -> str:
    return excinfo.value.reason


def test_every_required_root_must_sign() -> None:
    kg, tj = SigningKey.generate(), SigningKey.generate()
    roots = {KG: kg.verify_key(), TJ: tj.verify_key()}
    proposed = sign_statement(BODY, agency=KG, root=kg)
    with pytest.raises(InvalidStatement) as excinfo:
        UnverifiedStatement.parse(proposed).verify(roots, required=(KG, TJ))
    assert reason(excinfo) == "unsigned"
    signed = cosign_statement(proposed, agency=TJ, root=tj)
    verified = UnverifiedStatement.parse(signed).verify(roots, required=(KG, TJ))
    assert verified.body == BODY
    assert verified.signers == (KG, TJ)
    # The id is the body's: the same before and after co-signing.
    assert verified.statement_id == UnverifiedStatement.parse(proposed).statement_id


def test_the_signature_covers_the_context_and_the_canonical_body() -> None:
    kg = SigningKey.generate()
    document = json.loads(sign_statement(BODY, agency=KG, root=kg))
    kg.verify_key().verify(
        b64u_decode(document["signatures"][0]["sig"]), STATEMENT_CONTEXT + canonical_json(BODY)
    )


def test_a_root_that_is_not_pinned_grants_nothing() -> None:
    kg, impostor = SigningKey.generate(), SigningKey.generate()
    raw = sign_statement(BODY, agency=KG, root=impostor)
    with pytest.raises(InvalidStatement) as excinfo:
        UnverifiedStatement.parse(raw).verify({KG: kg.verify_key()}, required=(KG,))
    assert reason(excinfo) == "unsigned"  # signed, but not under the pinned key id
    with pytest.raises(InvalidStatement) as excinfo:
        UnverifiedStatement.parse(raw).verify({}, required=(KG,))
    assert reason(excinfo) == "unpinned"
    with pytest.raises(InvalidStatement) as excinfo:
        UnverifiedStatement.parse(raw).verify({KG: kg.verify_key()}, required=())
    assert reason(excinfo) == "unsigned"


def test_a_changed_body_or_a_forged_key_id_fails() -> None:
    kg, other = SigningKey.generate(), SigningKey.generate()
    raw = sign_statement(BODY, agency=KG, root=kg)
    tampered = raw.replace(b'"id":"a"', b'"id":"b"')
    with pytest.raises(InvalidStatement) as excinfo:
        UnverifiedStatement.parse(tampered).verify({KG: kg.verify_key()}, required=(KG,))
    assert reason(excinfo) == "bad_signature"
    # Another key's signature presented under the pinned key id.
    forged = json.loads(sign_statement(BODY, agency=KG, root=other))
    forged["signatures"][0]["key_id"] = kg.key_id
    with pytest.raises(InvalidStatement) as excinfo:
        UnverifiedStatement.parse(canonical_json(forged)).verify(
            {KG: kg.verify_key()}, required=(KG,)
        )
    assert reason(excinfo) == "bad_signature"


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"{}",
        b'{"signatures":[],"statement":{},"v":1}',
        b'{"signatures":[{"agency":"a","alg":"RSA","key_id":"k","sig":"AA"}],"statement":{},"v":1}',
        b'{"signatures":[{"agency":"a","alg":"Ed25519","key_id":"k","sig":"AA"}],"statement":[],"v":1}',
        b'{"signatures":[{"agency":"a","alg":"Ed25519","key_id":"k","sig":"AA"}],"statement":{},"v":2}',
    ],
)
def test_malformed_statements_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidStatement) as excinfo:
        UnverifiedStatement.parse(raw)
    assert reason(excinfo) == "malformed"


def test_root_key_files_and_the_pinned_roots_file(tmp_path: Path) -> None:
    root = create_root_key(tmp_path / "kg.key")
    assert (tmp_path / "kg.key").stat().st_mode & 0o777 == 0o600
    assert load_root_key(tmp_path / "kg.key").key_id == root.key_id
    with pytest.raises(ConfigurationError):
        create_root_key(tmp_path / "kg.key")  # never overwritten
    write_pinned_roots(tmp_path / "roots.json", {KG: root.verify_key()})
    assert load_pinned_roots(tmp_path / "roots.json") == {KG: root.verify_key()}
    document = json.loads((tmp_path / "roots.json").read_text())
    document["roots"][0]["key_id"] = "0" * 32  # a fingerprint that is not this key's
    (tmp_path / "bad.json").write_text(json.dumps(document))
    with pytest.raises(ConfigurationError):
        load_pinned_roots(tmp_path / "bad.json")
    with pytest.raises(ConfigurationError):
        load_pinned_roots(tmp_path / "missing.json")
