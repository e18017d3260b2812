"""ConnectorConfig: everything a frontend's client listener needs to know, with safe defaults."""
from zpomelo.errors import ConfigError
from zpomelo.protocol.package import DEFAULT_MAX_BODY, MAX_BODY_LIMIT


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
    handshake_hook     optional callable (conn, sys, user) -> reply user dict, for the frontend
    """

    def __init__(self, heartbeat=None, timeout=None, max_body=DEFAULT_MAX_BODY, codec=None,
                 ssl=None, no_delay=True, max_connections=None, blacklist=None,
                 handshake_timeout=10.0, write_queue_limit=1 << 20, close_timeout=3.0,
                 backlog=1024, disconnect_on_timeout=True, max_ws_message=None,
                 check_client=None, handshake_hook=None, use_dict=False, use_protobuf=False):
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

        Understands heartbeat, timeout, disconnectOnTimeout, useDict, useProtobuf, setNoDelay,
        maxConnections, ssl ({key, cert} or {keyfile, certfile} file paths), handshake,
        checkClient, blacklist (or blacklistFun) and maxBody; keyword overrides win.
        """
        opts = dict(opts or {})
        ssl = opts.get("ssl")
        if isinstance(ssl, dict):
            ssl = {"certfile": ssl.get("certfile") or ssl.get("cert"),
                   "keyfile": ssl.get("keyfile") or ssl.get("key")}
        heartbeat = opts.get("heartbeat")
        kwargs = dict(
            heartbeat=heartbeat or None,
            timeout=opts.get("timeout") or None,
            # Pomelo turns disconnection on whenever heartbeats are configured.
            disconnect_on_timeout=bool(opts.get("disconnectOnTimeout", True)),
            use_dict=bool(opts.get("useDict")),
            use_protobuf=bool(opts.get("useProtobuf")),
            no_delay=opts.get("setNoDelay", True) is not False,
            max_connections=opts.get("maxConnections"),
            ssl=ssl,
            handshake_hook=opts.get("handshake"),
            check_client=opts.get("checkClient"),
            blacklist=opts.get("blacklist") or opts.get("blacklistFun"),
            codec=codec,
        )
        if opts.get("maxBody"):
            kwargs["max_body"] = int(opts["maxBody"])
        if opts.get("handshakeTimeout"):
            kwargs["handshake_timeout"] = opts["handshakeTimeout"]
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self):
        return ("ConnectorConfig(heartbeat=%r, timeout=%r, max_body=%r, ssl=%s, max_connections=%r)"
                % (self.heartbeat, self.heartbeat_timeout, self.max_body, bool(self.ssl),
                   self.max_connections))
