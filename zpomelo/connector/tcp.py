"""Raw TCP transport: the socket carries a plain stream of Pomelo packages."""
from zpomelo.connector.conn import Connection


class TcpConnection(Connection):
    transport = "tcp"

    def _feed(self, data):
        self.handle_bytes(data)
        return None
