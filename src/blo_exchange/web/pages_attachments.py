"""Files on the pages: the officer's form uploads photos in parts (resumable, from a phone's
camera), and whoever may read an alert opens its thumbnails and files.

The officer's upload endpoints are the API's (``services.uploads``: the same offsets, limits
and checks) under the session cookie, with the session's CSRF token in ``X-CSRF-Token``; they
answer JSON to ``officer.js``. Without JavaScript the form posts the files themselves
(``multipart/form-data``, within the body limit), and :func:`upload_whole` takes them through
the same service. Files are served as downloads (never inline from the node's origin), the
thumbnails as images.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from blo_exchange.domain.directory import Principal, Role
from blo_exchange.domain.ids import AlertId
from blo_exchange.errors import BloExchangeError, http_status
from blo_exchange.services.attachments import AttachmentService, download_headers
from blo_exchange.services.feed import FeedService
from blo_exchange.services.ports import UploadRecord
from blo_exchange.services.uploads import UploadService
from blo_exchange.web.deps import Viewer, require, services_of
from blo_exchange.web.sessions import same_token

__all__ = ["file_limits", "form_attachments", "router", "upload_whole"]

router = APIRouter(include_in_schema=False)

Officer = Annotated[Viewer, Depends(require(Role.TERMINAL))]
Reader = Annotated[Viewer, Depends(require(Role.TERMINAL, Role.ANALYST))]
UploadIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
Index = Annotated[int, Path(ge=1, le=16)]


class _NewUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    length: int = Field(ge=1)
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=100)
    nominal: bool = False
    keep_location: bool = False


def _status(record: UploadRecord) -> JSONResponse:
    return JSONResponse(
        {
            "upload_id": record.id,
            "offset": record.received,
            "length": record.length,
            "state": record.state,
            "sha256": record.sha256,
        },
        headers={"Upload-Offset": str(record.received), "Cache-Control": "no-store"},
    )


def _refused(exc: BloExchangeError) -> JSONResponse:
    status, kind = http_status(exc)
    return JSONResponse({"status": status, "type": kind, "detail": str(exc)}, status_code=status)


def _csrf_ok(request: Request, viewer: Viewer) -> bool:
    return same_token(request.headers.get("x-csrf-token"), viewer.csrf)


@router.post("/officer/uploads")
async def start_upload(request: Request, viewer: Officer) -> Response:
    if not _csrf_ok(request, viewer):
        return JSONResponse({"status": 403, "detail": "csrf"}, status_code=403)
    try:
        body = _NewUpload.model_validate(await request.json())
    except (ValidationError, ValueError):
        return JSONResponse({"status": 422, "detail": "bad upload"}, status_code=422)
    try:
        record = (
            await services_of(request)
            .get(UploadService)
            .create(viewer.principal, **body.model_dump())
        )
    except BloExchangeError as exc:
        return _refused(exc)
    return _status(record)


@router.head("/officer/uploads/{upload_id}")
async def upload_offset(request: Request, upload_id: UploadIdPath, viewer: Officer) -> Response:
    try:
        record = await services_of(request).get(UploadService).status(viewer.principal, upload_id)
    except BloExchangeError as exc:
        return Response(status_code=http_status(exc)[0])
    return Response(headers={"Upload-Offset": str(record.received), "Cache-Control": "no-store"})


@router.patch("/officer/uploads/{upload_id}")
async def upload_part(request: Request, upload_id: UploadIdPath, viewer: Officer) -> Response:
    if not _csrf_ok(request, viewer):
        return JSONResponse({"status": 403, "detail": "csrf"}, status_code=403)
    offset = request.headers.get("upload-offset", "")
    if not offset.isdigit():
        return JSONResponse({"status": 400, "detail": "Upload-Offset"}, status_code=400)
    uploads = services_of(request).get(UploadService)
    try:
        record = await uploads.append(
            viewer.principal, upload_id, int(offset), await request.body()
        )
    except BloExchangeError as exc:
        return _refused(exc)
    return _status(record)


async def upload_whole(
    request: Request,
    principal: Principal,
    data: bytes,
    filename: str,
    content_type: str,
    *,
    nominal: bool,
    keep_location: bool,
) -> str:
    """A file the form posted itself (no JavaScript): one upload in one part; its id."""
    uploads = services_of(request).get(UploadService)
    record = await uploads.create(
        principal,
        length=len(data),
        filename=filename,
        content_type=content_type,
        nominal=nominal,
        keep_location=keep_location,
    )
    return (await uploads.append(principal, record.id, 0, data)).id


def file_limits(request: Request) -> dict[str, int] | None:
    """The node's limits the form states; None where the node takes no files."""
    services = services_of(request)
    if not services.has(UploadService):
        return None
    limits = services.get(UploadService).limits
    return {"max_mb": limits.max_bytes // (1024 * 1024), "max_files": limits.max_files}


async def form_attachments(request: Request, viewer: Viewer, form: FormData) -> list[str]:
    """The uploads the form names: those ``officer.js`` sent in parts, then any file the form
    carried itself (no JavaScript), each through the same upload service."""
    ids = [v for v in form.getlist("attachments") if isinstance(v, str)]
    keep = form.get("keep_location") == "1"
    for field, nominal in (("photo", False), ("files", False), ("documents", True)):
        for item in form.getlist(field):
            if isinstance(item, StarletteUpload) and item.filename:
                data = await item.read()
                if data:
                    ids.append(
                        await upload_whole(
                            request,
                            viewer.principal,
                            data,
                            item.filename,
                            item.content_type or "application/octet-stream",
                            nominal=nominal,
                            keep_location=keep,
                        )
                    )
    return ids


async def _opened(request: Request, viewer: Viewer, alert_id: str) -> Any:
    return await services_of(request).get(FeedService).opened(viewer.principal, alert_id)


@router.get("/files/{alert_id}/{index}")
async def open_file(request: Request, alert_id: AlertId, index: Index, viewer: Reader) -> Response:
    files = services_of(request).get(AttachmentService)
    try:
        file = await files.file(alert_id, await _opened(request, viewer, alert_id), index)
    except BloExchangeError as exc:
        return Response(status_code=http_status(exc)[0])
    return Response(content=file.data, headers=download_headers(file.name, file.media_type))


@router.get("/files/{alert_id}/{index}/thumbnail")
async def thumbnail(request: Request, alert_id: AlertId, index: Index, viewer: Reader) -> Response:
    files = services_of(request).get(AttachmentService)
    try:
        data = files.thumbnail(await _opened(request, viewer, alert_id), index)
    except BloExchangeError as exc:
        return Response(status_code=http_status(exc)[0])
    return Response(
        content=data,
        media_type="image/jpeg",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
    )
