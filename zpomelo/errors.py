"""The exception tree shared by every layer, and the codes clients see."""

CODE_OK = 200
CODE_FAIL = 500
CODE_OLD_CLIENT = 501
CODE_RATE_LIMITED = 429   # a request over its connection's rate limit (connectorConfig rateLimit*)


class ZpomeloError(Exception):
    """Base of every error zpomelo raises on purpose."""


class ProtocolError(ZpomeloError):
    """Bytes from a peer that do not follow the wire protocol."""


class BodyError(ProtocolError):
    """A well-framed message whose body cannot be decoded (bad JSON, bad protobuf).

    Carries the request id and route so the server can still answer it with code 500.
    """

    def __init__(self, message, msg_id=0, route=None):
        super().__init__(message)
        self.msg_id = msg_id
        self.route = route


class ConfigError(ZpomeloError):
    """A configuration file that cannot be used; names the file, the server and the field."""

    def __init__(self, message, path=None, server=None, field=None):
        parts = []
        if path:
            parts.append(str(path))
        if server:
            parts.append("server %r" % (server,))
        if field:
            parts.append("field %r" % (field,))
        prefix = ": ".join([", ".join(parts)]) if parts else ""
        super().__init__("%s: %s" % (prefix, message) if prefix else message)
        self.path = path
        self.server = server
        self.field = field


class RouteError(ZpomeloError):
    """A route that is malformed or names nothing callable."""


class HandlerError(ZpomeloError):
    """Raised by game code to answer a request with an error body, e.g. {"code": 500, "error": ...}."""

    def __init__(self, body=None, code=CODE_FAIL):
        if body is None:
            body = {}
        elif not isinstance(body, dict):
            body = {"error": str(body)}
        body = dict(body)
        body.setdefault("code", code)
        super().__init__(body.get("error") or body.get("message") or "handler error %s" % body["code"])
        self.body = body


class RpcError(ZpomeloError):
    """A remote call that failed; carries the remote exception's type name and code."""

    def __init__(self, message, remote_type=None, code=CODE_FAIL, server_id=None):
        super().__init__(message)
        self.remote_type = remote_type
        self.code = code
        self.server_id = server_id

    def __str__(self):
        base = super().__str__()
        if self.remote_type:
            base = "%s: %s" % (self.remote_type, base)
        if self.server_id:
            base = "%s (server %s)" % (base, self.server_id)
        return base


class RpcTimeout(RpcError):
    """A remote call with no reply before its deadline."""


class ServerGone(RpcError):
    """A remote call to a server that is not (or no longer) in the cluster."""


class PlayerOffline(ZpomeloError):
    """The uid has no session anywhere in the cluster (``uids``: the ones not found)."""

    def __init__(self, uids, what="player"):
        self.uids = list(uids)
        super().__init__("%s %s not online: no frontend holds a session bound to %s"
                         % (what, ", ".join(repr(u) for u in self.uids),
                            "it" if len(self.uids) == 1 else "them"))
