"""``/taxii2``: a read-only TAXII 2.1 server over an analyst's feed (``docs/stix-mapping.md``).

One API root per node (``/taxii2/<node id>/``); one collection per border pair the node serves,
and one (``feed``) for everything the agency's feed holds. A reader sees exactly what its feed
shows: the same inbox rows, opened by the same :class:`~blo_exchange.services.feed.FeedService`
(which verifies each envelope again), mapped to STIX by ``interop.stix``.

Who may read: an analyst of the node's agency, with its token as a bearer token or as the
password of HTTP Basic (the user name is not checked: TAXII clients such as MISP and OpenCTI
often offer Basic only). Anyone else: 401 or 403, as ``application/problem+json`` like every
other refusal of the node.

Every read is logged (principal, path, collection, objects returned) on the ``blo_exchange.taxii``
logger and counted in ``app.state``; it is not ledgered, unlike an auditor's ledger query (see the
document for why). Not implemented: ``match[...]`` filters, single objects, versions, status and
writing (``can_write`` is false).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from blo_exchange.api.deps import presented_certificate, service, services_of
from blo_exchange.api.limits import RateLimiter
from blo_exchange.api.problems import PROBLEM_JSON, PROBLEM_RESPONSES, problem
from blo_exchange.domain.directory import Node, Principal
from blo_exchange.domain.ids import NodeId, UtcTimestamp
from blo_exchange.errors import NotFound, Unauthenticated
from blo_exchange.interop.stix import StixMappingError, alert_objects
from blo_exchange.interop.taxii import (
    MAX_LIMIT,
    TAXII_MEDIA_TYPE,
    AlertObjects,
    InvalidNextError,
    Page,
    Position,
    collection_id,
    format_added,
    manifest_record,
    paginate,
)
from blo_exchange.services.auth import Authenticator
from blo_exchange.services.feed import FeedService
from blo_exchange.services.taxii_index import TaxiiIndex

__all__ = ["TAXII_READS", "TaxiiResponse", "install", "router"]

log = logging.getLogger("blo_exchange.taxii")

TAXII_READS: Final = "taxii_reads"
"""``app.state`` attribute: a Counter of TAXII reads by (principal id, resource)."""

_MIN_OBJECTS_PER_ALERT: Final = 7  # an information-only feedback note and what it refers to


ThisNode = Annotated[Node, Depends(service(Node))]
Feed = Annotated[FeedService, Depends(service(FeedService))]
Index = Annotated[TaxiiIndex, Depends(service(TaxiiIndex))]


async def _reader(request: Request, feed: Feed) -> Principal:
    """(1) a bearer token, or the password of Basic; (2) a valid, active principal; (3) the rate
    limit; (4) an analyst of this node's agency. Each failure is a 401 or 403."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    token: str | None = None
    if scheme.lower() == "bearer":
        token = credential.strip()
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthenticated("a valid bearer token or Basic password is required") from exc
        token = decoded.partition(":")[2]
    auth = services_of(request).get(Authenticator)
    principal = await auth.authenticate(token or None, certificate=presented_certificate(request))
    request.state.principal_id = principal.id
    limiter: RateLimiter = request.app.state.limiter
    limiter.take(principal.id)
    feed.require_analyst(principal)
    return principal


Reader = Annotated[Principal, Depends(_reader)]


def _accepts_taxii(accept: str | None) -> bool:
    if accept is None:
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in {"*/*", "application/*", "application/taxii+json"}:
            return True
    return False


async def _negotiate(request: Request) -> None:
    # Read here rather than declared as a parameter: Accept is content negotiation, not an
    # input of the operation, and stays out of the OpenAPI document.
    if not _accepts_taxii(request.headers.get("accept")):
        raise _NotAcceptableError


class _NotAcceptableError(Exception):
    """The client accepts no TAXII media type: a 406, by the handler :func:`install` adds."""


class TaxiiResponse(JSONResponse):
    media_type = TAXII_MEDIA_TYPE


router = APIRouter(
    prefix="/taxii2",
    tags=["taxii"],
    dependencies=[Depends(_negotiate)],
    default_response_class=TaxiiResponse,
    responses={
        **PROBLEM_RESPONSES,
        406: {
            "description": f"The client accepts no {TAXII_MEDIA_TYPE}",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        },
    },
)


def _taxii(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return TaxiiResponse(body, headers=headers)


def _audit(request: Request, principal: Principal, resource: str, count: int | None = None) -> None:
    counter = getattr(request.app.state, TAXII_READS, None)
    if not isinstance(counter, Counter):
        counter = Counter()
        setattr(request.app.state, TAXII_READS, counter)
    counter[(principal.id, resource)] += 1
    log.info(
        "taxii read",
        extra={
            "principal": principal.id,
            "agency": principal.agency_id,
            "path": request.url.path,
            "query": request.url.query[:500],
            "resource": resource,
            "objects": count,
        },
    )


ApiRoot = Annotated[NodeId, Path(description="The node's id: one API root per node.")]
CollectionId = Annotated[
    str,
    Path(
        pattern="^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="A collection id (a UUID) from the collections resource.",
    ),
]


def _root(node: Node) -> str:
    return f"/taxii2/{node.id}/"


@router.get("/", summary="TAXII discovery")
async def discovery(request: Request, reader: Reader, node: ThisNode) -> JSONResponse:
    _audit(request, reader, "discovery")
    return _taxii(
        {
            "title": f"blo-exchange node {node.id}",
            "description": f"Alerts addressed to {node.agency_id}, as STIX 2.1.",
            "default": _root(node),
            "api_roots": [_root(node)],
        }
    )


def _check_root(node: Node, api_root: str) -> None:
    if api_root != node.id:
        raise NotFound("no such API root")


@router.get("/{api_root}/", summary="TAXII API root")
async def api_root_info(
    request: Request, reader: Reader, node: ThisNode, api_root: ApiRoot
) -> JSONResponse:
    _check_root(node, api_root)
    _audit(request, reader, "api-root")
    return _taxii(
        {
            "title": f"blo-exchange node {node.id}",
            "description": "Read-only: seizures, risk alerts and feedback of this node's feed.",
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": 0,
        }
    )


def _collections(node: Node) -> dict[str, dict[str, Any]]:
    """Collection id → (resource, border pair or None)."""
    result: dict[str, dict[str, Any]] = {
        collection_id(node.id, None): {
            "title": f"Feed of {node.agency_id} on {node.id}",
            "description": "Every alert this node's feed shows to the agency's analysts.",
            "pair": None,
        }
    }
    for pair in node.border_pairs:
        result[collection_id(node.id, pair)] = {
            "title": f"{pair} alerts for {node.agency_id}",
            "description": f"The alerts of border pair {pair} in this node's feed.",
            "pair": pair,
        }
    return result


def _collection_resource(cid: str, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": cid,
        "title": info["title"],
        "description": info["description"],
        "can_read": True,
        "can_write": False,
        "media_types": ["application/stix+json;version=2.1"],
    }


@router.get("/{api_root}/collections/", summary="TAXII collections")
async def collections(
    request: Request, reader: Reader, node: ThisNode, api_root: ApiRoot
) -> JSONResponse:
    _check_root(node, api_root)
    _audit(request, reader, "collections")
    found = _collections(node)
    return _taxii({"collections": [_collection_resource(c, i) for c, i in found.items()]})


def _find(node: Node, api_root: str, cid: str) -> dict[str, Any]:
    _check_root(node, api_root)
    info = _collections(node).get(cid)
    if info is None:
        raise NotFound("no such collection")
    return info


@router.get("/{api_root}/collections/{cid}/", summary="TAXII collection")
async def collection(
    request: Request, reader: Reader, node: ThisNode, api_root: ApiRoot, cid: CollectionId
) -> JSONResponse:
    info = _find(node, api_root, cid)
    _audit(request, reader, f"collection:{cid}")
    return _taxii(_collection_resource(cid, info))


async def _page(
    node: Node,
    feed: FeedService,
    index: TaxiiIndex,
    reader: Principal,
    pair: str | None,
    *,
    added_after: UtcTimestamp | None,
    limit: int,
    next_token: str | None,
) -> Page:
    start = Position.parse(next_token) if next_token else None
    want = limit // _MIN_OBJECTS_PER_ALERT + 2
    rows = await index.added(
        node.id,
        node.agency_id,
        border_pair=pair,
        start=None if start is None else (start.added, start.seq),
        added_after=added_after,
        limit=want,
    )
    # Open (verify, decrypt, map) only as many alerts as the page needs, plus the one that
    # shows more follow: opening is most of a page's cost.
    alerts: list[AlertObjects] = []
    available = 0
    for row in rows:
        try:
            item = await feed.open_item(reader, row.item)
            objects = alert_objects(item)
        except (NotFound, StixMappingError):
            log.warning("alert left out of TAXII", extra={"alert_id": row.item.alert_id})
            objects = []
        skip = 0
        if start is not None and not alerts and row.received_at == start.added:
            skip = start.index if row.item.stream_seq == start.seq else 0
        available += max(0, len(objects) - skip)
        alerts.append(AlertObjects(row.received_at, row.item.stream_seq, objects))
        if available > limit:
            return paginate(alerts, start=start, limit=limit, exhausted=False)
    return paginate(alerts, start=start, limit=limit, exhausted=len(rows) < want)


def _page_headers(page: Page) -> dict[str, str]:
    if not page.objects:
        return {}
    return {
        "X-TAXII-Date-Added-First": format_added(page.objects[0][0]),
        "X-TAXII-Date-Added-Last": format_added(page.objects[-1][0]),
    }


def _envelope(page: Page, items: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"more": page.more}
    if page.next is not None:
        body["next"] = page.next.token()
    if items:
        body["objects"] = items
    return body


Limit = Annotated[int, Query(ge=1)]
Next = Annotated[str | None, Query(alias="next", max_length=200)]


def _collection_page(resource: str) -> Callable[..., Awaitable[Page]]:
    """The dependency both listings of a collection share: find it, read one page of it, and
    audit the read as ``<resource>:<collection>``."""

    async def page(
        request: Request,
        reader: Reader,
        node: ThisNode,
        feed: Feed,
        index: Index,
        api_root: ApiRoot,
        cid: CollectionId,
        added_after: UtcTimestamp | None = None,
        limit: Limit = 100,
        next_token: Next = None,
    ) -> Page:
        info = _find(node, api_root, cid)
        found = await _page(
            node,
            feed,
            index,
            reader,
            info["pair"],
            added_after=added_after,
            limit=min(limit, MAX_LIMIT),
            next_token=next_token,
        )
        _audit(request, reader, f"{resource}:{cid}", len(found.objects))
        return found

    return page


@router.get("/{api_root}/collections/{cid}/objects/", summary="TAXII objects")
async def objects(page: Annotated[Page, Depends(_collection_page("objects"))]) -> JSONResponse:
    items = [obj for _, obj in page.objects]
    return _taxii(_envelope(page, items), _page_headers(page))


@router.get("/{api_root}/collections/{cid}/manifest/", summary="TAXII manifest")
async def manifest(page: Annotated[Page, Depends(_collection_page("manifest"))]) -> JSONResponse:
    items = [manifest_record(added, obj) for added, obj in page.objects]
    return _taxii(_envelope(page, items), _page_headers(page))


def install(app: Any) -> None:
    """Register the router and the two TAXII-specific refusals (406, 400 for a bad ``next``)."""

    async def not_acceptable(request: Request, exc: Exception) -> JSONResponse:
        return problem(406, f"this resource is served as {TAXII_MEDIA_TYPE}")

    async def bad_next(request: Request, exc: Exception) -> JSONResponse:
        return problem(400, str(exc))

    app.add_exception_handler(_NotAcceptableError, not_acceptable)
    app.add_exception_handler(InvalidNextError, bad_next)
    app.include_router(router)
