"""gate.gateHandler.*: tells a client which connector to use (the gate keeps no sessions)."""
import zlib


def queryEntry(app, msg, session):
    """{uid} -> {code: 200, host, port} of the connector chosen by crc32 of the uid."""
    uid = msg.get("uid")
    if not uid:
        return {"code": 500, "error": "uid is required"}
    connectors = app.get_servers_by_type("connector")
    if not connectors:
        return {"code": 500, "error": "no connector is up; try again shortly"}
    connector = connectors[zlib.crc32(str(uid).encode("utf-8")) % len(connectors)]
    return {"code": 200, "host": connector.client_host or connector.host,
            "port": connector.client_port}
