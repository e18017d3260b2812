"""Raw TCP transport: the socket carries a plain stream of Pomelo packages."""
from zpomelo.connector.conn import RECV_SIZE, CLOSED, Connection


class TcpConnection(Connection):
    transport = "tcp"

    def _read_loop(self, data):
        recv = self._sock.recv
        handle_bytes = self.handle_bytes
        while True:
            if data:
                handle_bytes(data)
                if self.state is CLOSED:
                    return self.close_reason
            data = recv(RECV_SIZE)
            if not data:
                return "client closed"
