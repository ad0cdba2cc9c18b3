"""The FastAPI app of ``singerid serve``: JSON endpoints, the page at ``/``, docs at ``/docs``, all offline.

    import singerid
    from singerid.service import create_app

    app = create_app(singerid.open("H"), token="s3cret")   # then: uvicorn.run(app)

Nothing is fetched from the internet: the page's JS and CSS ship in ``singerid/service/static``
and the Swagger UI of ``/docs`` is the copy shipped by the pinned ``fastapi-offline`` package.
The model and index are the caller's ``Identifier``, opened once before the app is made.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from singerid.api import Identifier
from singerid.service.config import ServiceLimits
from singerid.service.errors import BodyLimit, install_handlers
from singerid.service.routes import Service, router

STATIC_DIR = Path(__file__).parent / "static"
DOCS_ASSETS_URL = "/docs-assets"  # fastapi-offline's Swagger UI files
PAGE_POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'"
DESCRIPTION = """Who sings this song? KNN-Net singer identification over a home built with the `singerid` CLI.

Upload endpoints take `multipart/form-data`. Errors are JSON `{"error": "...", "kind": "AudioError"}`.
Enrol and remove need the header `Authorization: Bearer <token>` given to `singerid serve --token`."""


def create_app(identifier: Identifier, *, token: str | None = None, limits: ServiceLimits | None = None) -> FastAPI:
    """The web service over an opened home.

    identifier: ``singerid.open(home)``, shared by all requests (it is thread-safe) and closed
    by the caller; token: the bearer token that enrol and remove need (None: writes refused);
    limits: upload size, song length, concurrency (``ServiceLimits()`` by default).
    """
    limits = limits or ServiceLimits()
    if token is not None and not token.strip():
        token = None
    app = FastAPIOffline(title="singerid", version=_version(), description=DESCRIPTION, redoc_url=None,
                         static_url=DOCS_ASSETS_URL, swagger_ui_parameters={"validatorUrl": None})
    upload_dir = limits.upload_dir or Path(identifier.home.root) / "uploads"
    app.state.service = Service(identifier, token, limits, upload_dir)
    install_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, limit_text=limits.describe_upload_limit())
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": PAGE_POLICY,
                                                                 "Cache-Control": "no-cache"})

    return app


def _version() -> str:
    try:
        return version("singerid")
    except PackageNotFoundError:
        return "0"
