"""``digest serve``: the subscriber-facing web app."""

from __future__ import annotations

import click

from digest.cli._common import Context, pass_context


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8080, show_default=True, type=int, help="port to listen on")
@pass_context
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve sign-up, confirmation, preferences, one-click unsubscribe and the archive."""
    import uvicorn

    from digest.web import create_app

    app = ctx.app()
    click.echo(
        f"serving {app.config.service.name} on http://{host}:{port} "
        f"(public address {app.config.service.base_url})"
    )
    uvicorn.run(
        create_app(app),
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )


COMMANDS = [serve]
