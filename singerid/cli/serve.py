"""`singerid serve`: the web service and its page over a home (model and index load once)."""

from __future__ import annotations

from pathlib import Path

import click

from singerid.cli.common import check_device_option, db_option, device_option, home_option, is_quiet, threads_option

TOKEN_ENV = "SINGERID_TOKEN"
_MiB = 1024**2


def _default(name: str) -> float:
    from singerid.service.config import ServiceLimits  # light: no fastapi import

    return getattr(ServiceLimits(), name)


@click.command("serve")
@home_option
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; put a TLS proxy in front).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--token", envvar=TOKEN_ENV, show_envvar=True, default=None,
              help="Bearer token that enrol and remove need; without one, writes are refused. Prefer the "
                   "environment variable: a command line is visible to other users.")
@device_option
@threads_option
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True),
              default=_default("max_upload_bytes") / _MiB, show_default=True,
              help="Largest upload per request (MiB); larger ones get 413.")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=_default("max_seconds"),
              show_default=True, help="Longest song accepted (seconds, from the file header); longer ones get 413.")
@click.option("--max-concurrent", type=click.IntRange(min=1), default=_default("max_concurrent"), show_default=True,
              help="Identifications and enrolments running at once; more requests wait their turn.")
def serve(home: Path, db_url: str | None, host: str, port: int, token: str | None, device: str, threads: int | None,
          max_upload_mb: float, max_seconds: float, max_concurrent: int) -> None:
    """Serve the web page, the JSON API and its docs (/docs) for HOME until Ctrl-C.

    Endpoints: POST /identify, GET /singers, GET|POST /similar, GET /map, GET /health, and
    with the token POST /singers/NAME/songs and DELETE /singers/NAME. Nothing is loaded
    from the internet: the page and the docs work offline.

    \b
    Example:
      singerid serve --home H
      SINGERID_TOKEN=s3cret singerid serve --home H --host 0.0.0.0 --port 8080
    """
    import uvicorn

    from singerid import api
    from singerid.service import ServiceLimits, create_app

    limits = ServiceLimits(max_upload_bytes=int(max_upload_mb * _MiB), max_seconds=max_seconds,
                           max_concurrent=max_concurrent)
    identifier = api.open(home, db=db_url, device=check_device_option(device), threads=threads)
    with identifier:
        app = create_app(identifier, token=token, limits=limits)
        n_singers = len(identifier.singers())
        writes = "enrol/remove need the token" if token else f"enrol/remove disabled (no --token or {TOKEN_ENV})"
        click.echo(f"serving {identifier.home.root} ({n_singers} singers) at http://{host}:{port}/ "
                   f"(docs at /docs); {writes}", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning" if is_quiet() else "info",
                    server_header=False)
