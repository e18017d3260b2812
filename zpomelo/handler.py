"""Runs one request through the filters and the user's handler function, and shapes the answer.

docs/protocol.md section 8: one response per request; ``{}`` when the handler returns nothing; an error
body always carries ``code`` (500 unless the error says otherwise).
"""
import logging
from time import monotonic

from zpomelo.errors import CODE_FAIL, HandlerError

logger = logging.getLogger(__name__)


def _before_of(f):
    return getattr(f, "before", None) or (f if callable(f) and not hasattr(f, "after") else None)


class FilterChain:
    """Before filters in order, after filters in reverse order (Pomelo's onion)."""

    def __init__(self):
        self.before = []
        self.after = []
        self.objects = []   # each filter added once; the app runs their start()/stop(), if any

    def _keep(self, f):
        if not any(f is kept for kept in self.objects):
            self.objects.append(f)

    def add_before(self, f):
        fn = _before_of(f)
        if fn is None:
            raise TypeError("a before filter needs a before(route, msg, session) method: %r" % (f,))
        self.before.append(fn)
        self._keep(f)

    def add_after(self, f):
        fn = getattr(f, "after", None)
        if fn is None:
            raise TypeError("an after filter needs an after(route, msg, session, resp, error) method: %r" % (f,))
        self.after.insert(0, fn)
        self._keep(f)

    def add(self, f):
        """A filter object with before and/or after."""
        self._keep(f)
        if getattr(f, "before", None):
            self.before.append(f.before)
        if getattr(f, "after", None):
            self.after.insert(0, f.after)


def error_body(exc, expose):
    if isinstance(exc, HandlerError):
        return exc.body
    if expose:
        return {"code": CODE_FAIL, "error": "%s: %s" % (type(exc).__name__, exc)}
    return {"code": CODE_FAIL, "error": "internal server error"}


class HandlerService:
    """route -> function for one server type, plus the filters and the error handler."""

    def __init__(self, app, server_type, services, filters, expose_errors=True):
        self.app = app
        self.filters = filters
        self.expose_errors = expose_errors
        self.error_handler = None
        self.invoke = None   # fn(handler, route, msg, session) around the call (app.db: a transaction)
        self.stats = None    # metrics.stats.HandlerStats (app.stats.handlers): observe(route, failed, seconds)
        self.server_type = server_type
        self.routes = self.route_table(services)

    def route_table(self, services):
        """{route: function} for {file name: {function name: function}} of this server type."""
        return {"%s.%s.%s" % (self.server_type, name, fn_name): fn
                for name, functions in services.items() for fn_name, fn in functions.items()}

    def replace(self, routes):
        """Serve ``routes`` (a route_table) from the next request on (zpomelo.reload): one
        assignment, so a request sees the old table or the new one, never a mix; a request
        already running keeps the function it looked up."""
        self.routes = routes

    def has(self, route):
        return route in self.routes

    def handle(self, route, msg, session):
        """Run filters and handler in the calling greenlet; always returns a JSON-able body."""
        started = monotonic()
        response = None
        error = None
        try:
            fn = self.routes.get(route)
            if fn is None:
                raise HandlerError({"code": CODE_FAIL, "error": "no handler for route %s" % route})
            for before in self.filters.before:
                early = before(route, msg, session)
                if early is not None:
                    response = early
                    break
            else:
                if self.invoke is None:
                    response = fn(self.app, msg, session)
                else:
                    response = self.invoke(fn, route, msg, session)
        except BaseException as exc:  # gevent.Timeout is a BaseException: answer it too
            if isinstance(exc, (SystemExit, KeyboardInterrupt)) or type(exc).__name__ == "GreenletExit":
                raise
            error = exc
            response = self._on_error(exc, route, msg, session)
        for after in self.filters.after:
            try:
                after(route, msg, session, response, error)
            except Exception as exc:
                logger.exception("after filter failed on %s", route)
                if error is None:
                    error = exc
                    response = self._on_error(exc, route, msg, session)
        if self.stats is not None:
            self.stats.observe(route, error is not None, monotonic() - started)
        if response is None:
            return {}
        if error is not None and isinstance(response, dict) and "code" not in response:
            response["code"] = CODE_FAIL
        return response

    def _on_error(self, exc, route, msg, session):
        if not isinstance(exc, HandlerError):
            logger.error("handler %s failed: %s: %s", route, type(exc).__name__, exc,
                         exc_info=not _is_timeout(exc))
        if self.error_handler is not None:
            try:
                body = self.error_handler(self.app, exc, route, msg, session)
                if body is not None:
                    return dict(body) if isinstance(body, dict) else {"code": CODE_FAIL, "error": str(body)}
            except Exception:
                logger.exception("error handler failed on %s", route)
        return dict(error_body(exc, self.expose_errors))


def _is_timeout(exc):
    return type(exc).__name__ in ("Timeout", "HandlerTimeout")
