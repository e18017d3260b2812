"""ConnectorConfig: everything a frontend's client listener needs to know, with safe defaults."""
from zpomelo import settings
from zpomelo.connector.ratelimit import RateLimits
from zpomelo.errors import ConfigError
from zpomelo.protocol.package import DEFAULT_MAX_BODY, MAX_BODY_LIMIT

_C = settings.CONNECTOR


class ConnectorConfig:
    """Settings of one frontend's connector.

    heartbeat          seconds between client heartbeats announced in the handshake; None = off
    timeout            seconds without a client heartbeat before the connection is closed
                       (default 2 x heartbeat); only used when heartbeats are on
    disconnect_on_timeout  False keeps silent clients (Pomelo's disconnectOnTimeout)
    max_body           largest package body accepted from a client; a bigger one closes it
    max_ws_message     largest WebSocket message (default max_body + 4: one full package)
    codec              a zpomelo.protocol.codec.ServerCodec (route dictionary / protobuf)
    ssl                None, {"certfile": ..., "keyfile": ...} or an ssl.SSLContext
    no_delay           TCP_NODELAY on accepted sockets
    max_connections    None or the most connections (including ones still handshaking)
    blacklist          None, a collection of IP strings, or a callable ip -> bool
    handshake_timeout  seconds from accept to a finished handshake (ACK received)
    write_queue_limit  bytes queued for one client before it is closed as too slow
    close_timeout      seconds a closing connection may spend flushing its queue
    backlog            listen backlog
    check_client       optional callable (type, version) -> bool, for the frontend's handshake
    handshake_hook     optional callable (app, session, sys, user) -> reply user dict, for the frontend
    use_dict, use_protobuf  what the frontend builds its codec with
    use_crypto         requests must carry an RSA signature (Pomelo's useCrypto), for the frontend
    single_session     binding a uid kicks its older session, for the frontend
    handler_pool_size  local handler calls the frontend runs at once
    forward_timeout    seconds a forwarded request waits (None: the app's rpcTimeout)
    max_in_flight      unanswered requests one client may have
    rate_limits        a connector.ratelimit.RateLimits (requests/s, bytes/s per connection; off
                       unless rateLimitRequests / rateLimitBytes are set)

    Defaults are the declarations in zpomelo.settings (connectorConfig keys, config/README.md).
    """

    def __init__(self, heartbeat=None, timeout=None, max_body=DEFAULT_MAX_BODY, codec=None,
                 ssl=None, no_delay=True, max_connections=None, blacklist=None,
                 handshake_timeout=settings.default("handshakeTimeout", _C),
                 write_queue_limit=1 << 20, close_timeout=3.0,
                 backlog=1024, disconnect_on_timeout=True, max_ws_message=None,
                 check_client=None, handshake_hook=None, use_dict=False, use_protobuf=False,
                 use_crypto=False, single_session=False,
                 handler_pool_size=settings.default("handlerPoolSize", _C), forward_timeout=None,
                 max_in_flight=settings.default("maxInFlight", _C), rate_limits=None):
        if heartbeat is not None and not heartbeat > 0:
            raise ConfigError("heartbeat must be a positive number of seconds or None, got %r"
                              % (heartbeat,), field="heartbeat")
        if timeout is not None and not timeout > 0:
            raise ConfigError("timeout must be a positive number of seconds or None, got %r"
                              % (timeout,), field="timeout")
        if not isinstance(max_body, int) or not 0 < max_body <= MAX_BODY_LIMIT:
            raise ConfigError("max_body must be an int in 1..%d, got %r" % (MAX_BODY_LIMIT, max_body),
                              field="max_body")
        if max_connections is not None and max_connections < 1:
            raise ConfigError("max_connections must be at least 1 or None", field="max_connections")
        if not handshake_timeout > 0:
            raise ConfigError("handshake_timeout must be positive", field="handshake_timeout")
        if not write_queue_limit > 0:
            raise ConfigError("write_queue_limit must be positive", field="write_queue_limit")
        if isinstance(ssl, dict) and not ssl.get("certfile"):
            raise ConfigError("ssl needs a 'certfile' (and usually a 'keyfile')", field="ssl")
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.disconnect_on_timeout = disconnect_on_timeout
        self.max_body = max_body
        self.max_ws_message = max_ws_message or max_body + 4
        self.codec = codec
        self.ssl = ssl
        self.no_delay = no_delay
        self.max_connections = max_connections
        self.blacklist = blacklist
        self.handshake_timeout = handshake_timeout
        self.write_queue_limit = write_queue_limit
        self.close_timeout = close_timeout
        self.backlog = backlog
        self.check_client = check_client
        self.handshake_hook = handshake_hook
        self.use_dict = use_dict
        self.use_protobuf = use_protobuf
        self.use_crypto = use_crypto
        self.single_session = single_session
        self.handler_pool_size = handler_pool_size
        self.forward_timeout = forward_timeout
        self.max_in_flight = max_in_flight
        self.rate_limits = rate_limits if rate_limits is not None else RateLimits()

    @property
    def heartbeat_timeout(self):
        """Seconds of client silence that close a working connection, or None."""
        if self.heartbeat is None or not self.disconnect_on_timeout:
            return None
        return self.timeout or 2 * self.heartbeat

    def is_blacklisted(self, ip):
        blacklist = self.blacklist
        if not blacklist:
            return False
        if callable(blacklist):
            return bool(blacklist(ip))
        return ip in blacklist

    @classmethod
    def from_pomelo(cls, opts, codec=None, **overrides):
        """Build from a Pomelo ``connectorConfig`` dict (app.set('connectorConfig', {...})).

        Every key is declared in zpomelo.settings (the table in config/README.md); a misspelled
        key is a ConfigError naming the close match. ``ssl`` takes {key, cert} or {keyfile,
        certfile} file paths; keyword overrides win.
        """
        opts = dict(opts or {})
        settings.check(opts, _C)

        def get(name):
            return settings.value(opts, name, _C)

        ssl = opts.get("ssl")
        if isinstance(ssl, dict):
            ssl = {"certfile": ssl.get("certfile") or ssl.get("cert"),
                   "keyfile": ssl.get("keyfile") or ssl.get("key")}
        kwargs = dict(
            heartbeat=get("heartbeat") or None,
            timeout=get("timeout") or None,
            # Pomelo turns disconnection on whenever heartbeats are configured.
            disconnect_on_timeout=get("disconnectOnTimeout"),
            use_dict=get("useDict"),
            use_protobuf=get("useProtobuf"),
            use_crypto=get("useCrypto"),
            single_session=get("singleSession"),
            no_delay=get("setNoDelay"),
            max_connections=get("maxConnections"),
            max_body=get("maxBody") or DEFAULT_MAX_BODY,
            handshake_timeout=get("handshakeTimeout") or settings.default("handshakeTimeout", _C),
            ssl=ssl,
            handshake_hook=get("handshake"),
            check_client=get("checkClient"),
            blacklist=get("blacklist") or get("blacklistFun"),
            handler_pool_size=get("handlerPoolSize"),
            forward_timeout=get("forwardTimeout"),
            max_in_flight=get("maxInFlight"),
            rate_limits=RateLimits.from_settings(get),
            codec=codec,
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self):
        return ("ConnectorConfig(heartbeat=%r, timeout=%r, max_body=%r, ssl=%s, max_connections=%r)"
                % (self.heartbeat, self.heartbeat_timeout, self.max_body, bool(self.ssl),
                   self.max_connections))
