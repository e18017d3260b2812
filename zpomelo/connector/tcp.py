"""Raw TCP transport: the socket carries a plain stream of Pomelo packages."""
from zpomelo.connector.conn import CLOSED, RECV_SIZE, Connection
from zpomelo.netio import make_receiver


class TcpConnection(Connection):
    transport = "tcp"

    def _read_loop(self, data):
        recv = make_receiver(self._sock)
        handle_bytes = self.handle_bytes
        while True:
            if data:
                handle_bytes(data)
                if self.state is CLOSED:
                    return self.close_reason
            data = recv(RECV_SIZE)
            if not data:
                return "client closed"
