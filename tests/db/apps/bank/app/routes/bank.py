"""Which bank server serves a request: the account's, or an explicit routeKey (tests)."""
SEEN = []


def handler(session, route, msg):
    SEEN.append(route)
    return msg.get("routeKey") or session.uid


def remote(param, method, args):
    SEEN.append(method)
    return param
