"""The errors zpomelo.client raises; all are ZpomeloError, so one except catches them."""
from zpomelo.errors import ZpomeloError


class ClientError(ZpomeloError):
    """Base of the errors raised by zpomelo.client."""


class ConnectionClosed(ClientError):
    """The connection is closed (or closed while a request waited); `reason` says why."""

    def __init__(self, message, reason=None):
        super().__init__(message)
        self.reason = reason


class HandshakeError(ClientError):
    """The server refused the handshake: `code` 500 (bad handshake / hook failed) or 501 (old client)."""

    def __init__(self, code, body=None):
        hint = {500: "the server rejected the handshake (bad sys/user data, or its handshake hook failed)",
                501: "the server rejects this client type/version; upgrade the client"}.get(
                    code, "unexpected handshake reply")
        super().__init__("handshake refused with code %s: %s" % (code, hint))
        self.code = code
        self.body = body


class ClientTimeout(ClientError, TimeoutError):
    """A wait on the server (connect, handshake, push) passed its deadline."""


class RequestTimeout(ClientTimeout):
    """No response to a request before its timeout; `route` and `request_id` name it."""

    def __init__(self, route, request_id, timeout):
        super().__init__("no response to request %d %r within %.3g s (the server may be slow, "
                         "or the route may not answer)" % (request_id, route, timeout))
        self.route = route
        self.request_id = request_id
        self.timeout = timeout
