"""Raw TCP transport: the socket carries a plain stream of Pomelo packages."""
from zpomelo.connector.conn import Connection


class TcpConnection(Connection):
    transport = "tcp"

    # the bytes are packages as they are; handle_bytes returns None (no close reason)
    _feed = Connection.handle_bytes
