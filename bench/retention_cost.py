"""What keeping a nominal block crypto-shreddable adds per alert, against what a node already
pays for each one, measured in the same run (docs/retention.md).

Run alone: ``python -m bench.retention_cost [--n 2000]``. In-process, no servers: it times

- baseline: ``verify`` + ``open`` of the demo seizure envelope for the recipient (what delivery,
  and the feed on every read, already do);
- store: ``split_nominal`` + ``seal_nominal`` (delivery's extra step at a recipient);
- read: ``open_nominal`` + ``join_nominal`` (each read's extra step while the key exists);

and prints each per-envelope time and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from datetime import date

from blo_exchange.crypto.canonical import canonical_json
from blo_exchange.crypto.envelope import RecipientKey, UnverifiedEnvelope, seal
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey
from blo_exchange.crypto.retention import join_nominal, open_nominal, seal_nominal, split_nominal
from blo_exchange.domain.examples import EXAMPLE_SEIZURE

AGENCY = "tj-drug-control-agency"
DAY = date(2027, 1, 4)


def _per_call(fn: Callable[[], object], n: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--suite", default=HpkeSuite.MLKEM768_X25519.value)
    args = parser.parse_args()
    suite = HpkeSuite(args.suite)
    signer, kem = SigningKey.generate(), KemPrivateKey.generate(suite)
    header = {
        "alert_id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "kind": "seizure",
        "border_pair": "KG-TJ",
        "origin_node": "blo-karamyk-kg",
        "origin_agency": "kg-border-service",
        "suite": suite.value,
    }
    parts = {
        "case": canonical_json(EXAMPLE_SEIZURE["case"]),
        "nominal": canonical_json(EXAMPLE_SEIZURE["nominal"]),
    }
    raw = seal(header, parts, [RecipientKey(AGENCY, kem.public_key(), ("case", "nominal"))], signer)
    keys, private = {signer.key_id: signer.verify_key()}, {kem.key_id: kem}
    epoch = os.urandom(32)
    split = split_nominal(raw)
    assert split is not None
    stored, record = split
    sealed = seal_nominal(record, epoch, alert_id=header["alert_id"], day=DAY)

    def baseline() -> object:
        verified = UnverifiedEnvelope.parse(raw).verify(
            keys, subject_border_pair="KG-TJ", subject_kind="seizure", recipient_agency=AGENCY
        )
        return verified.open(AGENCY, private)

    def store() -> object:
        _, r = split_nominal(raw) or (b"", b"")
        return seal_nominal(r, epoch, alert_id=header["alert_id"], day=DAY)

    def read() -> object:
        return join_nominal(stored, open_nominal(sealed, epoch, alert_id=header["alert_id"]))

    base = _per_call(baseline, args.n)
    results = {"suite": suite.value, "n": args.n, "baseline_verify_open_us": round(base * 1e6, 1)}
    for name, fn in (("store", store), ("read", read)):
        cost = _per_call(fn, args.n)
        results[f"{name}_us"] = round(cost * 1e6, 1)
        results[f"{name}_ratio"] = round(cost / base, 3)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
