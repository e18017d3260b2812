"""The store inside a server: ``app.db``, handlers in transactions, pushes and notifies on commit.

``attach(app)`` (called by ``Application.start`` once the handlers are loaded) opens the store the
project configures, registers the models of ``app/models``, and:
- (``app.pushes`` itself puts every push a transaction makes in that transaction's outbox, sent
  after its commit and dropped on rollback);
- runs each client request for this server type in a transaction (``TransactionFilter``): commit
  before the answer leaves; a handler that raises, times out or cannot get a lock rolls back and
  the client gets ``{"code": 500, "error": "<ErrorType>: <what happened>"}``. A Conflict or
  Deadlock reruns the handler from the start (nothing it sent has left its outbox).
"""
import logging

from zpomelo.db.config import load_options, open_database
from zpomelo.db.errors import DbError
from zpomelo.db.model import load_models
from zpomelo.db.routes import install_routes
from zpomelo.errors import HandlerError

logger = logging.getLogger(__name__)


def attach(app):
    """Open ``app.db`` for this server, or return None when the project has no store.

    Also installs the routes of ``app/routes/<type>.py`` (with or without a store)."""
    install_routes(app)
    options = load_options(app.base_dir, app.env, app.get("db"))
    if options is None:
        return None
    db = open_database(options, app.base_dir, app.env)
    db.register(*load_models(app.base_dir).values())
    db.filter = TransactionFilter(app, db, options.get("transactions") or {}, options["requestIdField"])
    if app.handler_service is not None:
        app.handler_service.invoke = db.filter.invoke
    logger.info("%s: %s store open (%s)", app.server_id, db.engine.name,
                getattr(db.engine, "path", None) or getattr(db.engine, "url", ""))
    return db


class TransactionFilter:
    """Which requests run in a transaction: by default every route of a backend server.

    ``transactions`` in db.json: ``{"serverTypes": ["area", ...]}`` (only these types; default
    every backend type), ``{"exclude": ["area.areaHandler.ping", "chat"]}`` (routes, or
    prefixes of routes: a server type or ``type.handler``), ``{"enabled": false}``.
    """

    def __init__(self, app, db, spec, request_id_field=None):
        self.app = app
        self.db = db
        types = spec.get("serverTypes")
        on_type = app.server_type in types if types is not None else not app.is_frontend
        self.enabled = bool(spec.get("enabled", True)) and on_type
        self.excluded = list(spec.get("exclude", ()))
        self.request_id_field = request_id_field
        self._applies = {}

    def exclude(self, route_or_prefix):
        self.excluded.append(route_or_prefix)
        self._applies.clear()

    def applies(self, route):
        known = self._applies.get(route)
        if known is None:
            known = self.enabled and not any(
                route == e or route.startswith(e + ".") for e in self.excluded)
            if len(self._applies) < 10000:
                self._applies[route] = known
        return known

    def invoke(self, fn, route, msg, session):
        app = self.app
        applies = self._applies.get(route)
        if not (applies if applies is not None else self.applies(route)):
            return fn(app, msg, session)
        request_id = None
        if self.request_id_field and isinstance(msg, dict) and msg.get(self.request_id_field) is not None:
            who = session.uid if session.uid is not None else "%s/%s" % (session.frontend_id, session.id)
            request_id = "%s|%s|%s" % (who, route, msg[self.request_id_field])
        try:
            return self.db.run(fn, app, msg, session, request_id=request_id)
        except DbError as exc:
            raise HandlerError({"code": exc.code, "error": "%s: %s" % (type(exc).__name__, exc)}) from exc
