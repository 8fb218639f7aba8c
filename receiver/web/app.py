"""The web UI's aiohttp application: the route table, the security headers, the login gate,
and ``UiServer``, which runs it in its own thread with its own event loop.

Routes (Datasette's shape): every page has a JSON twin, the same path ending in ``.json``
(``/session/X`` and ``/session/X.json``), also served under ``/api/`` (``/api/session/X``);
the JSON is exactly the data the page's template was given. ``/api/live`` streams new events
as server-sent events. The UI only reads: every route is GET except logging in and out.

Why a thread of its own: in ``serve`` the OTLP front ends and the batcher share the daemon's
event loop, and ClickHouse queries for pages block (clickhouse-connect). The UI runs on a
second loop in a second thread, and each query runs in that loop's worker threads
(``receiver.web.queries``), so neither a slow page nor many open live tails can delay an
acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import threading
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import structlog
from aiohttp import web
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from receiver.config import ConfigError, Settings, parse_host_port
from receiver.ingest.auth import Authenticator
from receiver.query.reports import ReportError
from receiver.web import views
from receiver.web.live import LiveFeed
from receiver.web.login import COOKIE, Logins, login_redirect, safe_next
from receiver.web.queries import Store
from receiver.web.render import environment, to_json

log = structlog.get_logger("receiver.web")

# No inline script or style anywhere: every script and stylesheet is a file under /static/.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
KEEPALIVE_SECONDS = 15.0
_ID = r"{id:[^/]+?}"
_FORMAT = r"{format:(\.json)?}"

View = Callable[[Store, web.Request, bool], Awaitable[views.Page]]

# path -> view; each path is served as HTML, as PATH.json and as /api/PATH.
PAGES: dict[str, View] = {
    "/sessions": lambda store, r, html: views.sessions(store, r.query, html),
    "/session/{id}": lambda store, r, html: views.session(store, r.match_info["id"]),
    "/trace/{id}": lambda store, r, html: views.trace(store, r.match_info["id"]),
    "/live": lambda store, r, html: views.live(store, r.query),
    "/reports": lambda store, r, html: views.reports_index(store, r.query),
    "/reports/{name}": lambda store, r, html: views.report(store, r.match_info["name"], r.query),
    "/search": lambda store, r, html: views.search(store, r.query, html),
}
NAV = (("/", "Sessions"), ("/live", "Live"), ("/reports", "Reports"))


class Ui:
    """The handlers, with what they share: the store, the live feed, templates, logins."""

    def __init__(self, store: Store, logins: Logins) -> None:
        self.store = store
        self.logins = logins
        self.feed = LiveFeed(store)
        self.templates = environment()

    def render(self, template: str, status: int = 200, **context: Any) -> web.Response:
        context.setdefault("title", "")
        context.setdefault("json_url", "")
        text = self.templates.get_template(template).render(
            nav=NAV, login_required=self.logins.required, **context
        )
        return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")

    def page_handler(self, view: View, api: bool) -> Callable[[web.Request], Awaitable[Any]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            html = not api and not request.match_info.get("format")
            try:
                page = await view(self.store, request, html)
            except views.NotFound as exc:
                return self.error(request, html, 404, str(exc))
            except (views.BadRequest, ReportError) as exc:
                return self.error(request, html, 400, str(exc))
            except (ClickHouseError, OSError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                log.warning("ui_query_failed", path=request.path, error=first)
                return self.error(request, html, 503, f"the ClickHouse query failed: {first}")
            if page.redirect:
                raise web.HTTPFound(page.redirect)
            if not html:
                return web.Response(
                    text=to_json(page.data), status=page.status, content_type="application/json"
                )
            json_url = ("/sessions" if request.path == "/" else request.path) + ".json"
            if request.query_string:
                json_url += "?" + request.query_string
            return self.render(
                page.template,
                page.status,
                title=page.title,
                json_url=json_url,
                **page.data,
                **page.extra,
            )

        return handle

    def error(self, request: web.Request, html: bool, status: int, message: str) -> web.Response:
        if not html:
            return web.Response(
                text=to_json({"error": message}), status=status, content_type="application/json"
            )
        return self.render("error.html", status, title=f"{status}", message=message)

    async def live_stream(self, request: web.Request) -> web.StreamResponse:
        """``/api/live``: server-sent events, one ``data:`` line per batch of new events."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue = self.feed.subscribe()
        try:
            await response.write(b"retry: 2000\n: connected\n\n")
            while True:
                try:
                    batch = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if batch is None:
                    break
                await response.write(b"data: " + to_json(batch).encode() + b"\n\n")
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.feed.unsubscribe(queue)
        return response

    async def login_form(self, request: web.Request) -> web.Response:
        return self.render(
            "login.html",
            title="Log in",
            next=safe_next(request.query.get("next", "/")),
            failed=False,
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        target = safe_next(str(form.get("next", "/")))
        login = self.logins.login(str(form.get("token", "")).strip())
        if login is None:
            return self.render("login.html", 401, title="Log in", next=target, failed=True)
        answer = web.HTTPSeeOther(target)
        self.logins.set_cookie(answer, login)
        raise answer

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self.logins.logout(request.cookies.get(COOKIE, ""))
        answer = web.HTTPSeeOther("/login")
        answer.del_cookie(COOKIE, path="/")
        raise answer

    @web.middleware
    async def gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Without a valid login: pages go to the login form, the API answers 401."""
        if self.logins.allows(request):
            return await handler(request)
        if (
            request.method == "GET"
            and not request.path.startswith("/api/")
            and not request.path.endswith(".json")
        ):
            raise web.HTTPFound(login_redirect(request))
        return web.Response(
            text=to_json({"error": "unauthenticated"}),
            status=401,
            content_type="application/json",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def build_app(store: Store, logins: Logins) -> web.Application:
    ui = Ui(store, logins)
    app = web.Application(middlewares=[ui.gate])
    app.on_response_prepare.append(_security_headers)
    routes = [
        web.get("/", ui.page_handler(PAGES["/sessions"], api=False)),
        web.get("/api/live", ui.live_stream),
    ]
    for pattern, view in PAGES.items():
        html_path = pattern.replace("{id}", _ID).replace("{name}", "{name:[A-Za-z0-9_]+?}")
        routes.append(web.get(html_path + _FORMAT, ui.page_handler(view, api=False)))
        routes.append(web.get("/api" + pattern, ui.page_handler(view, api=True)))
    routes += [
        web.get("/login", ui.login_form),
        web.post("/login", ui.login),
        web.post("/logout", ui.logout),
        web.static("/static", str(resources.files("receiver.web") / "static")),
    ]
    app.add_routes(routes)

    async def close(app: web.Application) -> None:
        await ui.feed.close()

    app.on_shutdown.append(close)
    return app


class UiServer:
    """The UI on ``settings.ui_listen``, in a thread with its own event loop."""

    def __init__(
        self,
        settings: Settings,
        connect: Callable[[], Client],
        authenticator: Authenticator,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.store = Store(connect, settings.clickhouse_database)
        self.logins = Logins(authenticator, secure_cookie=ssl_context is not None)
        self.ssl_context = ssl_context
        self.port = 0
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        host, _ = parse_host_port(self.settings.ui_listen, "ui_listen")
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.ssl_context else 'http'}://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Listen, or raise ConfigError naming ``ui_listen``."""
        self._thread = threading.Thread(target=self._main, name="web-ui", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the web UI did not start in time")
        if self._error is not None:
            raise self._error

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self.store.close()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); after start, logged
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.error("ui_failed", error=str(exc))

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        host, port = parse_host_port(self.settings.ui_listen, "ui_listen")
        runner = web.AppRunner(
            build_app(self.store, self.logins), access_log=None, shutdown_timeout=2.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=self.ssl_context, reuse_address=True)
            try:
                await site.start()
            except OSError as exc:
                raise ConfigError(
                    f"ui_listen: cannot listen on {self.settings.ui_listen} "
                    f"({exc.strerror or exc}; address in use or not local)"
                ) from None
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


def serve_alone(
    settings: Settings,
    connect: Callable[[], Client],
    authenticator: Authenticator,
    ssl_context: ssl.SSLContext | None,
) -> None:
    """``otel-receiver ui``: the UI until SIGINT or SIGTERM."""
    server = UiServer(settings, connect, authenticator, ssl_context)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    log.info("ui_started", url=server.url, ui_port=server.port)
    print(f"web UI: {server.url}/", flush=True)
    stopping.wait()
    server.stop()
