"""The only code touching client sockets: one port for TCP and WebSocket Pomelo clients."""
from zpomelo.connector.config import ConnectorConfig  # noqa: F401
from zpomelo.connector.conn import CLOSED, INITED, WAIT_ACK, WORKING, Connection, State  # noqa: F401
from zpomelo.connector.hybrid import Connector  # noqa: F401
