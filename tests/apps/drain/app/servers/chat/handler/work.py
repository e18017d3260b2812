def hold(app, msg, session):
    """Uses the ledger until the test releases it; then (optionally) binds the session."""
    ledger = app.get("ledger")
    with ledger.use(msg.get("name", "hold")):
        ledger.release.wait(20)
        if msg.get("bind"):
            session.bind(msg["bind"])   # a _sys call back to the frontend
        return {"released": ledger.release.is_set(), "server": app.server_id}


def quick(app, msg, session):
    return {"server": app.server_id}
