def hold(app, msg, session):
    """Uses the ledger until the test releases it; then (optionally) binds the session."""
    ledger = app.get("ledger")
    with ledger.use(msg.get("name", "hold")):
        ledger.release.wait(20)
        if msg.get("bind"):
            session.bind(msg["bind"])   # a _sys call back to the frontend
        return {"released": ledger.release.is_set(), "server": app.server_id}


def hold_files(app, msg, session):
    """For a server in another process: writes msg["started"], waits (20 s at most) for the test to
    create msg["release"]."""
    import os
    import time

    import gevent
    ledger = app.get("ledger")
    with ledger.use("files"):
        with open(msg["started"], "w") as f:
            f.write(app.server_id)
        deadline = time.monotonic() + 20
        while not os.path.exists(msg["release"]) and time.monotonic() < deadline:
            gevent.sleep(0.01)
        return {"released": os.path.exists(msg["release"]), "server": app.server_id}


def quick(app, msg, session):
    return {"server": app.server_id}
