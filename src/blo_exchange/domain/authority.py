"""Whether a node was entitled to say what it signed: the authority rules every receiver applies.

A valid signature says which node sent a message, nothing more. These rules say whether that node
may speak for what the message claims, from directory facts only (the origin node's record and the
agreements), never from a field of the message itself. Pure: the caller looks the facts up.

For an alert, in this order (the first failure is the reason):

1. ``origin_agency`` is the origin node's agency (``wrong_origin_agency``);
2. the node serves the alert's border pair (``pair_not_served``);
3. the node serves its crossing point, when the node lists crossing points, as ingest checks
   (``crossing_point_not_served``);
4. it cites at least one agreement, and every cited agreement is known and applies to the alert
   at ``at``: in force, the origin agency a party, covering the pair, kind and TLP
   (``agreement_not_applicable``);
5. every recipient other than the origin agency is a party to a cited agreement
   (``recipient_not_allowed``);
6. the nominal block, and every attachment marked as personal data (a passport scan), is sealed
   only to the origin agency and to parties of a cited agreement that allows personal data
   (``nominal_not_allowed``).

For a signed record (a receipt, a re-share step, a ledger query record): its ``agency`` is its
signing node's agency (``wrong_agency``), and the border pair it names, if any, is one the node
serves (``pair_not_served``). A ``hit`` (a lookout matched a risk alert) is about a ``risk``
alert (``not_a_risk_alert``) and names, as ``detail.crossing_point``, a crossing point the node
serves, one of its own when it lists any (``crossing_point_not_served``).

Not decided here: whether the signature is valid or the node's key unrevoked (``crypto`` and
``services.signed``); whether the directory facts themselves are genuine (the directory's job).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from blo_exchange.domain.directory import Agreement, Node
from blo_exchange.domain.ledger import LedgerEntryType
from blo_exchange.domain.marking import Tlp
from blo_exchange.domain.policy import applies
from blo_exchange.errors import NotEntitled

__all__ = ["check_alert_authority", "check_record_authority"]


def check_alert_authority(
    header: Mapping[str, Any],
    recipient_parts: Mapping[str, Iterable[str]],
    *,
    origin: Node,
    agreements: Iterable[Agreement],
    at: datetime,
    nominal_parts: Iterable[str] = ("nominal",),
) -> None:
    """Steps 1-6 of the module docstring for a verified envelope's header and recipients
    (agency -> the parts sealed to it; ``nominal_parts`` are its personal-data parts). Raises
    ``NotEntitled`` with the failing step's reason."""
    personal = frozenset(nominal_parts)
    origin_agency = header.get("origin_agency")
    # (1) The origin node speaks only for its own agency.
    if origin_agency != origin.agency_id:
        raise NotEntitled("wrong_origin_agency")
    # (2) and (3) It speaks only for the pairs and crossing points it serves.
    pair, kind = header.get("border_pair"), header.get("kind")
    if pair not in origin.border_pairs:
        raise NotEntitled("pair_not_served")
    if origin.crossing_points and header.get("crossing_point") not in origin.crossing_points:
        raise NotEntitled("crossing_point_not_served")
    # (4) Every cited agreement applies; there is at least one.
    cited_ids = header.get("agreement_ids")
    if not isinstance(cited_ids, list) or not cited_ids:
        raise NotEntitled("agreement_not_applicable")
    try:
        tlp = Tlp(str(header.get("tlp")))
    except ValueError:
        raise NotEntitled("agreement_not_applicable") from None
    known = {agreement.id: agreement for agreement in agreements}
    cited: list[Agreement] = []
    for agreement_id in cited_ids:
        agreement = known.get(agreement_id) if isinstance(agreement_id, str) else None
        if agreement is None or not applies(
            agreement,
            origin_agency=origin.agency_id,
            border_pair=str(pair),
            kind=str(kind),
            tlp=tlp,
            at=at,
        ):
            raise NotEntitled("agreement_not_applicable")
        cited.append(agreement)
    # (5) Recipients: parties of the cited agreements (and the origin agency itself).
    allowed = {origin.agency_id}.union(*(a.parties for a in cited))
    nominal_allowed = {origin.agency_id}.union(*(a.parties for a in cited if a.nominal))
    for agency, parts in recipient_parts.items():
        if agency not in allowed:
            raise NotEntitled("recipient_not_allowed")
        # (6) Personal data only where an agreement allows it.
        if personal.intersection(parts) and agency not in nominal_allowed:
            raise NotEntitled("nominal_not_allowed")


def check_record_authority(body: Mapping[str, Any], *, signer: Node) -> None:
    """A signed record speaks only for its signing node's agency and pairs."""
    if body.get("agency") != signer.agency_id:
        raise NotEntitled("wrong_agency")
    pair = body.get("border_pair")
    if pair is not None and pair not in signer.border_pairs:
        raise NotEntitled("pair_not_served")
    if body.get("type") == LedgerEntryType.HIT:
        _check_hit(body, signer)


def _check_hit(body: Mapping[str, Any], signer: Node) -> None:
    """Where a hit says it happened is a place its node serves; what it hit is a risk alert."""
    if body.get("kind") != "risk":
        raise NotEntitled("not_a_risk_alert")
    detail = body.get("detail")
    point = detail.get("crossing_point") if isinstance(detail, Mapping) else None
    if not isinstance(point, str) or (
        signer.crossing_points and point not in signer.crossing_points
    ):
        raise NotEntitled("crossing_point_not_served")
