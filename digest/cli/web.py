"""``digest serve``: the subscriber-facing web app."""

from __future__ import annotations

import click

from digest.cli._common import Context, pass_context


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8080, show_default=True, type=int, help="port to listen on")
@pass_context
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve sign-up, confirmation, preferences, one-click unsubscribe, the archive, and the
    admin console at /admin with /metrics."""
    import os

    import uvicorn

    from digest.web import create_app
    from digest.web.server import base_url_warning, server_config

    app = ctx.app()
    asgi = create_app(app)  # before saying "serving": a missing secret stops it here
    click.echo(
        f"serving {app.config.service.name} on http://{host}:{port} "
        f"(public address {app.config.service.base_url})"
    )
    warning = base_url_warning(app.config.service.base_url, host)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    if os.environ.get("FORWARDED_ALLOW_IPS"):
        click.echo(
            "warning: FORWARDED_ALLOW_IPS is not read; the proxies trusted are "
            f"service.trusted_proxies = {list(app.config.service.trusted_proxies)}",
            err=True,
        )
    uvicorn.Server(server_config(asgi, host, port)).run()


COMMANDS = [serve]
