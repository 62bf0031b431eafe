"""``/v1/uploads`` (an officer's resumable upload) and ``/v1/alerts/{id}/attachments``.

Uploads are chunked parts with offsets, tus-like (docs/contracts/api.md, "Uploads"): ``POST``
creates one with its length, ``PATCH`` sends a part at ``Upload-Offset``, ``HEAD`` says where it
stands after a drop. An alert names complete uploads in ``attachments``. A recipient reads each
file decrypted, as a download (``Content-Disposition: attachment``, ``nosniff``, its own
``Content-Security-Policy: sandbox``), never rendered inline by the node's origin.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from blo_exchange.api.deps import CurrentPrincipal, service
from blo_exchange.api.problems import PROBLEM_RESPONSES
from blo_exchange.api.strict_json import StrictJsonRoute
from blo_exchange.domain.ids import AlertId
from blo_exchange.errors import UnsupportedMedia
from blo_exchange.services.attachments import AttachmentService, download_headers
from blo_exchange.services.feed import FeedService
from blo_exchange.services.ports import UploadRecord
from blo_exchange.services.uploads import UploadService

__all__ = ["router"]

router = APIRouter(
    prefix="/v1",
    tags=["attachments"],
    route_class=StrictJsonRoute,
    # Besides every route's problems: a file type the node does not take, or a lying file.
    responses={415: PROBLEM_RESPONSES[413] | {"description": "A file type this node refuses"}},
)

Uploads = Annotated[UploadService, Depends(service(UploadService))]
Files = Annotated[AttachmentService, Depends(service(AttachmentService))]
Feed = Annotated[FeedService, Depends(service(FeedService))]
UploadIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
PART_TYPE = "application/offset+octet-stream"


class NewUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    length: int = Field(ge=1, description="The file's size in bytes.")
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=100)
    nominal: bool = Field(default=False, description="Personal data (a passport scan).")
    keep_location: bool = Field(
        default=False, description="Keep the photo's EXIF location (else it is stripped)."
    )


def _status(record: UploadRecord) -> dict[str, Any]:
    return {
        "upload_id": record.id,
        "offset": record.received,
        "length": record.length,
        "state": record.state,
        "filename": record.filename,
        "nominal": record.nominal,
        "media_type": record.media_type,
        "sha256": record.sha256,
        "size": record.size,
    }


def _offset_headers(response: Response, record: UploadRecord) -> None:
    response.headers["Upload-Offset"] = str(record.received)
    response.headers["Upload-Length"] = str(record.length)


@router.post("/uploads", status_code=201)
async def create_upload(
    body: NewUpload, principal: CurrentPrincipal, uploads: Uploads, response: Response
) -> dict[str, Any]:
    """Start an upload; 413 over the node's size limit, 415 for a type it does not accept."""
    record = await uploads.create(
        principal,
        length=body.length,
        filename=body.filename,
        content_type=body.content_type,
        nominal=body.nominal,
        keep_location=body.keep_location,
    )
    response.headers["Location"] = f"/v1/uploads/{record.id}"
    _offset_headers(response, record)
    return _status(record)


@router.head("/uploads/{upload_id}")
async def upload_offset(
    upload_id: UploadIdPath, principal: CurrentPrincipal, uploads: Uploads
) -> Response:
    """Where the upload stands (``Upload-Offset``): resume from there after a drop."""
    response = Response(status_code=200)
    _offset_headers(response, await uploads.status(principal, upload_id))
    return response


@router.get("/uploads/{upload_id}")
async def get_upload(
    upload_id: UploadIdPath, principal: CurrentPrincipal, uploads: Uploads, response: Response
) -> dict[str, Any]:
    record = await uploads.status(principal, upload_id)
    _offset_headers(response, record)
    return _status(record)


@router.patch("/uploads/{upload_id}")
async def upload_part(
    upload_id: UploadIdPath,
    request: Request,
    principal: CurrentPrincipal,
    uploads: Uploads,
    response: Response,
    upload_offset: Annotated[int, Header(ge=0)],
    content_type: Annotated[str, Header()],
) -> dict[str, Any]:
    """A part at ``Upload-Offset`` (409 if the upload is elsewhere); the last one completes it
    (415 if the file is not what it said)."""
    if content_type.split(";")[0].strip() != PART_TYPE:
        raise UnsupportedMedia(f"a part is sent as {PART_TYPE}")
    record = await uploads.append(principal, upload_id, upload_offset, await request.body())
    _offset_headers(response, record)
    return _status(record)


@router.get("/alerts/{alert_id}/attachments")
async def list_attachments(
    alert_id: AlertId, principal: CurrentPrincipal, feed: Feed, files: Files
) -> dict[str, Any]:
    """The files of an alert the caller may read, with whether each has arrived."""
    opened = await feed.opened(principal, alert_id)
    return {"alert_id": alert_id, "attachments": await files.listing(alert_id, opened)}


@router.get("/alerts/{alert_id}/attachments/{index}")
async def get_attachment(
    alert_id: AlertId,
    index: Annotated[int, Path(ge=1, le=16)],
    principal: CurrentPrincipal,
    feed: Feed,
    files: Files,
) -> Response:
    """The file, decrypted, for whoever may read the alert and was given its key; 404 for
    anyone else, 409 while it has not arrived."""
    opened = await feed.opened(principal, alert_id)
    file = await files.file(alert_id, opened, index)
    return Response(content=file.data, headers=download_headers(file.name, file.media_type))


@router.get("/alerts/{alert_id}/attachments/{index}/thumbnail")
async def get_thumbnail(
    alert_id: AlertId,
    index: Annotated[int, Path(ge=1, le=16)],
    principal: CurrentPrincipal,
    feed: Feed,
    files: Files,
) -> Response:
    """The thumbnail that travelled inline with the alert (a JPEG)."""
    opened = await feed.opened(principal, alert_id)
    return Response(
        content=files.thumbnail(opened, index),
        media_type="image/jpeg",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )
