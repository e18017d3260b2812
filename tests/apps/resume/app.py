"""One frontend for the session resume tests: window, buffer and heartbeat from the environment."""
import os


def configure(app):
    app.set("connectorConfig", {
        "heartbeat": float(os.environ.get("TEST_HEARTBEAT", "0.5")),
        "resumeWindow": float(os.environ.get("TEST_RESUME_WINDOW", "3")),
        "resumeBuffer": int(os.environ.get("TEST_RESUME_BUFFER", "2048")),
    })
    app.set("events", [])
