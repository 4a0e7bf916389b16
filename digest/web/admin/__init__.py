"""The admin console under /admin, and /metrics: mounted by ``create_app`` with
``admin_routes``. See console.py for the login and the guard on every route."""

from __future__ import annotations

import jinja2
from starlette.routing import BaseRoute, Mount, Route

from digest.app import App
from digest.web.admin.auth import LoginGuard
from digest.web.admin.config_screen import ConfigScreen
from digest.web.admin.console import Console
from digest.web.admin.metrics import metrics_endpoint
from digest.web.admin.preview_screen import PreviewScreen
from digest.web.admin.subscriber_add import AddSubscriber
from digest.web.admin.subscriber_screens import SubscriberScreens
from digest.web.admin.views import Screens
from digest.web.mailer import Mailer

__all__ = ["admin_routes"]


def admin_routes(
    app: App, env: jinja2.Environment, mailer: Mailer, guard: LoginGuard | None = None
) -> list[BaseRoute]:
    """/admin/... (each screen behind the login) and /metrics; ``mailer`` is the web app's
    one (context.py), which sends the preview's tests."""
    console = Console(app, env, mailer, guard)
    s, p, people = Screens(console), PreviewScreen(console), SubscriberScreens(console)
    config, adding = ConfigScreen(console), AddSubscriber(console)
    g = console.guarded
    get, both = ["GET"], ["GET", "POST"]
    routes = [
        Route("/login", console.login, methods=both),
        Route("/logout", g(console.logout), methods=["POST"]),
        Route("/", g(s.dashboard), methods=get),
        Route("/preview", g(p.preview), methods=get),
        Route("/preview/email.html", g(p.preview_html), methods=get),
        Route("/preview/send", g(p.preview_send), methods=["POST"]),
        Route("/subscribers", g(people.subscribers), methods=get),
        Route("/subscribers.csv", g(people.export), methods=get),
        Route("/subscribers/add", g(adding.add), methods=both),
        Route("/subscribers/{subscriber_id:int}", g(people.subscriber), methods=both),
        Route("/import", g(people.import_page), methods=both),
        Route("/editions", g(s.editions), methods=get),
        Route("/editions/{edition_id:int}", g(s.edition), methods=get),
        Route("/editions/{edition_id:int}/retry", g(s.retry), methods=["POST"]),
        Route("/sources", g(s.sources), methods=get),
        Route("/sources/fetch", g(s.fetch_now), methods=["POST"]),
        Route("/delivery", g(s.delivery), methods=both),
        Route("/config", g(config.show), methods=get),
        Route("/config/reload", g(config.reload), methods=["POST"]),
        Route("/config/signal", g(config.signal_daemon), methods=["POST"]),
        # Anything else under /admin: still a login first, so no URL says what exists.
        Route(
            "/{rest:path}",
            g(s.not_found),
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        ),
    ]
    return [Mount("/admin", routes=routes), Route("/metrics", metrics_endpoint(app))]
