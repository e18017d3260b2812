SEEN = {"requests": 0, "forbidden": 0}


def work(app, msg, session):
    """Counts every request that reaches this backend (a refused one must never be counted)."""
    SEEN["requests"] += 1
    if msg.get("forbidden") or msg.get("explode"):
        SEEN["forbidden"] += 1
    return {"code": 200, "n": msg.get("n"), "pad": len(msg.get("pad", ""))}


def seen(app, msg, session):
    return dict(SEEN)
