"""Every named setting zpomelo reads, declared once with its one default (see config/README.md).

Two families:
- application settings, read with ``app.get(name)`` (``app.set("rpcTimeout", 5)`` in app.py);
- connector settings, the keys of the ``connectorConfig`` dict a frontend is given
  (``app.set("connectorConfig", {...})``), parsed once into a ``ConnectorConfig``.

Defaults live only here: code that needs one calls ``default(name)`` instead of writing the number
again. A key that is not declared but is close to a declared name (``rpcTimout``) is a typo that
would silently keep the default, so it is refused with a ``ConfigError`` naming the close match.
Application settings also carry the game's own values (``app.set("webServer", ...)``), so other
unknown application keys are fine; an unknown ``connectorConfig`` key without a close match is
logged as a warning (Pomelo options zpomelo does not implement land there).

This module only declares; it imports nothing from zpomelo but errors and a protocol constant, so
every layer from the sockets up may use it.
"""
import difflib
import logging
from typing import Any, NamedTuple

from zpomelo.errors import ConfigError
from zpomelo.protocol.package import DEFAULT_MAX_BODY

logger = logging.getLogger(__name__)

APP = "app"
CONNECTOR = "connectorConfig"


def _bool(raw):
    """JSON-ish booleans: true/false, "true"/"false", 0/1."""
    if isinstance(raw, str):
        if raw.lower() in ("true", "1", "yes", "on"):
            return True
        if raw.lower() in ("false", "0", "no", "off", ""):
            return False
        raise ValueError(raw)
    return bool(raw)


def _number(raw):
    """A number kept as written (a heartbeat of 3 stays 3 in the handshake JSON)."""
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, (int, float)):
        return raw
    text = str(raw).strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


_bool.__name__ = "a boolean"
_number.__name__ = "a number"
_NUMBER_NAMES = {int: "an integer"}


class Setting(NamedTuple):
    name: str
    scope: str      # APP or CONNECTOR
    default: Any
    kind: Any       # a converter (_number, int, _bool) or None to take the value as given
    doc: str


_DECLARED = [
    # -- application settings: app.set(name, value) ------------------------------------------
    Setting("rpcTimeout", APP, 10.0, _number,
            "seconds a remote call (app.rpc, session and channel calls) waits for its answer"),
    Setting("rpcPoolSize", APP, 10000, int,
            "calls this server's RPC server runs at once; at the limit it stops reading "
            "(backpressure on the callers)"),
    Setting("drainTimeout", APP, 5.0, _number,
            "seconds a graceful stop waits for in-flight requests before closing sockets"),
    Setting("reloadOnChange", APP, False, _bool,
            "reload handlers, remotes, crons and routes when their files change (development; "
            "files polled once a second; `zpomelo reload` does it on demand)"),
    Setting("oneSessionPerUid", APP, True, _bool,
            "binding a uid kicks its older session anywhere in the cluster (reason \"another "
            "login with the same uid\"); false allows several sessions per uid"),
    Setting("uidDirectoryResync", APP, 30.0, _number,
            "seconds between a frontend's full syncs of its bound uids to the uid directory "
            "(repairs lost updates); 0 = only on membership changes"),
    Setting("exposeErrors", APP, None, _bool,
            "put handler exception text in error responses (default: on unless env is production)"),
    Setting("metrics", APP, None, _bool,
            "serve Prometheus metrics on /metrics (port: metricsPort of the server record); "
            "default: on when prometheus_client is installed (the [metrics] extra), false turns "
            "the endpoint off (the counters are kept: the admin console reads them)"),
    # -- connector settings: keys of app.set("connectorConfig", {...}) -------------------------
    Setting("heartbeat", CONNECTOR, None, _number,
            "seconds between client heartbeats announced in the handshake; unset = off"),
    Setting("timeout", CONNECTOR, None, _number,
            "seconds of client silence that close it (default 2 x heartbeat)"),
    Setting("disconnectOnTimeout", CONNECTOR, True, _bool,
            "false keeps silent clients open"),
    Setting("useDict", CONNECTOR, False, _bool, "compress routes with the route dictionary"),
    Setting("useProtobuf", CONNECTOR, False, _bool,
            "encode bodies with serverProtos.json / clientProtos.json"),
    Setting("useCrypto", CONNECTOR, False, _bool,
            "require RSA signatures (__crypto__) on request bodies, as Pomelo's useCrypto"),
    Setting("setNoDelay", CONNECTOR, True, _bool, "TCP_NODELAY on client sockets"),
    Setting("maxConnections", CONNECTOR, None, int,
            "the most client connections (also max-connections in servers.json)"),
    Setting("maxBody", CONNECTOR, DEFAULT_MAX_BODY, int, "largest package body a client may send (bytes)"),
    Setting("handshakeTimeout", CONNECTOR, 10.0, _number,
            "seconds from accept to a finished handshake"),
    Setting("ssl", CONNECTOR, None, None, "{key, cert} (or keyfile/certfile) paths: TLS / wss"),
    Setting("blacklist", CONNECTOR, None, None, "IP strings to refuse, or a function ip -> bool"),
    Setting("blacklistFun", CONNECTOR, None, None, "Pomelo's name for a blacklist function"),
    Setting("handshake", CONNECTOR, None, None,
            "fn(app, session, sys, user) -> reply user dict; raising refuses the client (500)"),
    Setting("checkClient", CONNECTOR, None, None,
            "fn(client_type, version) -> bool; false refuses the client (501)"),
    Setting("singleSession", CONNECTOR, False, _bool,
            "binding a uid kicks that uid's older session"),
    Setting("handlerPoolSize", CONNECTOR, 10000, int,
            "local handler calls a frontend runs at once; beyond it requests get 'server too busy'"),
    Setting("forwardTimeout", CONNECTOR, None, _number,
            "seconds a forwarded request waits for its backend (default: rpcTimeout)"),
    Setting("maxInFlight", CONNECTOR, 1000, int,
            "unanswered requests one client may have; more are answered with an error at once"),
    Setting("rateLimitRequests", CONNECTOR, None, _number,
            "requests and notifies per second one connection may send (token bucket); unset = "
            "no limit; over it a request is answered with code 429 and not handled"),
    Setting("rateLimitRequestsBurst", CONNECTOR, None, _number,
            "the request bucket's size: how many may come at once (default: one second's worth)"),
    Setting("rateLimitBytes", CONNECTOR, None, _number,
            "message bytes per second one connection may send (token bucket); unset = no limit"),
    Setting("rateLimitBytesBurst", CONNECTOR, None, _number,
            "the byte bucket's size (default: one second's worth); a bigger message is always "
            "refused"),
    Setting("rateLimitKickAfter", CONNECTOR, 50, int,
            "refused messages within rateLimitKickWindow after which the connection is kicked "
            "(reason 'rate limit exceeded') and closed; 0 = never kick"),
    Setting("rateLimitKickWindow", CONNECTOR, 10.0, _number,
            "seconds over which rateLimitKickAfter counts refusals"),
    Setting("resumeWindow", CONNECTOR, 30, _number,
            "seconds a dropped client that asked for resume may come back and get its session "
            "(uid, settings, channels, missed pushes); 0 turns resume off"),
    Setting("resumeBuffer", CONNECTOR, 2048, int,
            "pushes kept per resumable session for replay; a client that missed more gets a "
            "fresh session"),
    Setting("resumeBufferBytes", CONNECTOR, 1 << 20, int,
            "bytes of pushes kept per resumable session for replay (the other bound; at most "
            "the 1 MiB a connection may queue, so a replay never overflows its write queue)"),
]

DECLARED = {(s.scope, s.name): s for s in _DECLARED}
_NAMES = {scope: [s.name for s in _DECLARED if s.scope == scope] for scope in (APP, CONNECTOR)}


def declared(scope):
    """The declarations of one scope, in table order."""
    return [s for s in _DECLARED if s.scope == scope]


def default(name, scope=APP):
    return DECLARED[(scope, name)].default


def value(values, name, scope=APP, fallback=None):
    """``values[name]`` converted to the declared kind, or the declared default.

    ``fallback`` replaces a default of None (``forwardTimeout`` falls back to ``rpcTimeout``).
    """
    setting = DECLARED[(scope, name)]
    raw = values.get(name) if values else None
    if raw is None:
        raw = setting.default if setting.default is not None else fallback
        if raw is None:
            return None
    if setting.kind is None:
        return raw
    try:
        return setting.kind(raw)
    except (TypeError, ValueError):
        kind = _NUMBER_NAMES.get(setting.kind, setting.kind.__name__)
        raise ConfigError("setting %r must be %s, got %r" % (name, kind, raw)) from None


def close_match(name, scope):
    matches = difflib.get_close_matches(name, _NAMES[scope], n=1, cutoff=0.8)
    if not matches:
        lowered = {n.lower(): n for n in _NAMES[scope]}
        return lowered.get(str(name).lower())
    return matches[0]


def check(values, scope):
    """Refuse a misspelled setting (a ConfigError naming the close match); see the module doc."""
    known = _NAMES[scope]
    for name in list(values or ()):
        if not isinstance(name, str) or name in known:
            continue
        match = close_match(name, scope)
        where = "app.set(%r, ...)" % name if scope == APP else "connectorConfig key %r" % name
        if match is not None:
            raise ConfigError("unknown setting %s: did you mean %r? (settings: config/README.md)"
                              % (where, match), field=name)
        if scope == CONNECTOR:
            logger.warning("unknown %s is ignored (settings: config/README.md)", where)
