"""The JSON endpoints: identify, similar, map, singers, enrol, remove, health.

Every handler is a thin shell over ``singerid.api.Identifier``: it reads the request, runs the
blocking call on the thread pool (never on the event loop; identify and enrol also wait for a
slot of ``ServiceLimits.max_concurrent``) and returns the result's ``to_dict()``.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from singerid.api import Identifier
from singerid.errors import AudioError, DatasetError, ParameterError
from singerid.service.config import ServiceLimits
from singerid.service.errors import ServiceError
from singerid.service.forms import IDENTIFY_OPTIONS, Option, convert, multipart_body, query_parameters, read_options
from singerid.service.uploads import Uploads, singer_folder

T = TypeVar("T")
SIMILAR_METHOD = "cosine similarity of singer centroids (mean of each singer's indexed block embeddings)"
TOP_OPTION = (Option("top", int, "similar singers listed (5)"),)

router = APIRouter()


@dataclass
class Service:
    """What every handler needs: the opened home, the write token, the limits and the work slots."""

    identifier: Identifier
    token: str | None
    limits: ServiceLimits
    upload_dir: Path
    slots: anyio.CapacityLimiter | None = None

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func(*args, **kwargs)`` on the thread pool, once one of the ``max_concurrent`` slots is free
        (audio work: identify, enrol, remove)."""
        if self.slots is None:
            self.slots = anyio.CapacityLimiter(self.limits.max_concurrent)
        return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), limiter=self.slots)

    @staticmethod
    async def read(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A quick read (singers, map, health) on the thread pool without waiting for a slot."""
        return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))

    def check_token(self, request: Request) -> None:
        """Writes need ``Authorization: Bearer <token>``; with no token configured they are off."""
        if self.token is None:
            raise ServiceError("writes are disabled on this server: start it with --token T (or SINGERID_TOKEN=T) "
                               "and send the header 'Authorization: Bearer T'", status=403, kind="WritesDisabled")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ServiceError("this request changes the home: send the header 'Authorization: Bearer <token>'",
                               status=401, kind="Unauthorized", headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise ServiceError("wrong token", status=403, kind="Forbidden")


def service(request: Request) -> Service:
    return request.app.state.service


@router.post("/identify", summary="Who sings this song?", openapi_extra={
    **multipart_body({"song": "the song: any format libsndfile reads (wav, flac, mp3, ogg)"}),
    "parameters": query_parameters(IDENTIFY_OPTIONS)})
async def identify(request: Request) -> dict[str, Any]:
    """Identify the uploaded ``song``: the singer (null for an unknown singer), vote share,
    runners-up, evidence (reference song, query offset ~ reference offset, similarity), similar
    singers when asked, and the song's point on the timbre map (``map_point``, as in ``GET /map``)."""
    svc = service(request)
    async with request.form(max_files=1) as form:
        options = read_options(request.query_params, form, svc.limits, ignore=("song",))
        with Uploads(svc.limits) as uploads:
            path = await uploads.save(_one_file(form, "song"), "song")
            with uploads.named_errors():
                answer = await svc.run(svc.identifier.identify, path, place_on_map=True, **options)
            return answer.to_dict() | {"song": uploads.names[path]}


@router.get("/similar", summary="Singers closest to a singer")
async def similar_to_singer(request: Request, singer: Annotated[str, Query(description="a singer in GET /singers")],
                            top: Annotated[int, Query(ge=0, le=1000, description="how many to list")] = 5
                            ) -> dict[str, Any]:
    """The ``top`` singers whose timbre is closest to ``singer`` (itself excluded)."""
    svc = service(request)
    _check_top(top, svc.limits)
    found = await svc.read(svc.identifier.similar, singer, top=top)
    return {"singer": singer, "method": SIMILAR_METHOD, "similar": [s.to_dict() for s in found]}


@router.post("/similar", summary="Singers closest to an uploaded song", openapi_extra={
    **multipart_body({"song": "the song"}), "parameters": query_parameters(TOP_OPTION)})
async def similar_to_song(request: Request) -> dict[str, Any]:
    """The singers whose timbre is closest to the uploaded ``song`` (its blocks' centroid)."""
    svc = service(request)
    async with request.form(max_files=1) as form:
        top = read_options(request.query_params, form, svc.limits, allowed=TOP_OPTION, ignore=("song",)).get("top", 5)
        with Uploads(svc.limits) as uploads:
            path = await uploads.save(_one_file(form, "song"), "song")
            with uploads.named_errors():
                found = await svc.run(svc.identifier.similar, song=path, top=top)
            return {"song": uploads.names[path], "method": SIMILAR_METHOD, "similar": [s.to_dict() for s in found]}


@router.get("/map", summary="The timbre map")
async def timbre_map(request: Request) -> dict[str, Any]:
    """Every indexed singer as a point on a plane (PCA of singer centroids)."""
    svc = service(request)
    return (await svc.read(svc.identifier.timbre_map)).to_dict()


@router.get("/singers", summary="The singers this server can answer with")
async def singers(request: Request) -> dict[str, Any]:
    svc = service(request)
    return {"singers": [s.to_dict() for s in await svc.read(svc.identifier.singers)]}


@router.post("/singers/{name:path}/songs", summary="Enrol songs of a singer (needs the token)", status_code=201,
             openapi_extra=multipart_body(
                 {"songs": "one or more songs of the singer (repeat the field)"},
                 {"album": "album name recorded for these songs", "add_to_existing": "true to add to a singer "
                  "the home already holds"}, many=("songs",)))
async def enrol(request: Request, name: str) -> JSONResponse:
    """Add the uploaded ``songs`` to singer ``name`` without retraining: stored, indexed and
    queryable at once. The files are kept under the server's upload folder."""
    svc = service(request)
    svc.check_token(request)  # before a byte of the body is read
    async with request.form(max_files=svc.limits.max_files) as form:
        unknown = sorted(set(form) - {"songs", "album", "add_to_existing"})
        if unknown:
            raise ParameterError(f"unknown form field(s) {', '.join(unknown)}; expected songs, album, add_to_existing")
        files = form.getlist("songs")
        if not files:
            raise ParameterError("send at least one file in the form field 'songs'")
        album = _text(form, "album")
        extra: dict[str, Any] = {}
        if _text(form, "add_to_existing") is not None and convert("add_to_existing", _text(form, "add_to_existing"),
                                                                     bool):
            extra["add_to_existing"] = True
        with Uploads(svc.limits) as uploads:
            saved = [await uploads.save(f, "songs") for f in files]
            kept = [uploads.keep(p, svc.upload_dir / singer_folder(name)) for p in saved]
            try:
                with uploads.named_errors():
                    result = await svc.run(svc.identifier.enrol, name, kept, album=album, **extra)
            except DatasetError as exc:
                uploads.discard_kept()
                if not extra and name in {s.name for s in await svc.read(svc.identifier.singers)}:
                    raise ServiceError(f"singer {name!r} already exists; send the form field add_to_existing=true "
                                       "to add these songs to that singer, or enrol the new voice under another name",
                                       status=409, kind="SingerExists") from exc
                raise
            except BaseException:
                uploads.discard_kept()
                raise
            failed = {Path(f.song) for f in result.failures}
            uploads.discard_kept(failed)
            body = result.to_dict()
            body["failures"] = [f.to_dict() | {"song": uploads.names.get(Path(f.song), Path(f.song).name),
                                               "error": uploads.shown(f.error)} for f in result.failures]
    if failed and len(failed) == len(kept):
        raise ServiceError(f"none of the {len(kept)} song(s) could be enrolled: {body['failures'][0]['error']}",
                           status=422, kind=AudioError.__name__, extra={"failures": body["failures"]})
    return JSONResponse(body, status_code=201 if result.n_songs else 200)


@router.delete("/singers/{name:path}", summary="Remove a singer (needs the token)")
async def remove(request: Request, name: str) -> dict[str, Any]:
    """Remove singer ``name`` with all their songs from the store and the index."""
    svc = service(request)
    svc.check_token(request)
    try:
        result = await svc.run(svc.identifier.remove, singer=name)
    except ParameterError as exc:
        if name not in {s.name for s in await svc.read(svc.identifier.singers)}:
            raise ServiceError(str(exc), status=404, kind="DatasetError") from exc
        raise
    folder = svc.upload_dir / singer_folder(name)
    if folder.is_dir():
        await anyio.to_thread.run_sync(_remove_tree, folder)
    return result.to_dict()


@router.get("/health", summary="Is the server ready, and what does it hold?")
async def health(request: Request) -> dict[str, Any]:
    svc = service(request)
    info = await svc.read(svc.identifier.info)  # no slot: health answers under load too
    model = info.details.get("model") or {}
    index = info.details.get("index") or {}
    return {"status": "ok" if info.consistent else "degraded", "home": info.home, "singers": info.n_singers,
            "songs": info.n_songs, "vectors": index.get("n_vectors"), "index": index.get("factory_key"),
            "model": {"kind": model.get("kind"), "sha256": (model.get("sha256") or "")[:12] or None,
                      "front_end": model.get("front_end")},
            "problems": list(info.problems), "writes": "enabled" if svc.token else "disabled",
            "limits": {"max_upload_mb": svc.limits.max_upload_bytes / 2**20, "max_seconds": svc.limits.max_seconds}}


def _one_file(form: Any, field: str) -> Any:
    items = form.getlist(field)
    if not items:
        raise ParameterError(f"send the audio file in the form field {field!r} (multipart/form-data)")
    return items[0]


def _text(form: Any, field: str) -> str | None:
    value = form.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParameterError(f"form field {field!r} must be text, not a file")
    return value.strip() or None


def _check_top(top: int, limits: ServiceLimits) -> None:
    if top > limits.max_list:
        raise ParameterError(f"top must lie in [0, {limits.max_list}], got {top}")


def _remove_tree(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
