"""player.* requests run on the server of the (calling) player."""


def handler(session, route, msg):
    return session.uid


def remote(param, method, args):
    return param
