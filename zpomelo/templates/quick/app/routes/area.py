"""area.* requests run on the server of the area: its id is the routing key."""


def handler(session, route, msg):
    return msg.get("areaId") or session.get("areaId") or session.uid


def remote(param, method, args):
    return param
