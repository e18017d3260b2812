"""A cluster for the stop-order tests: a chat handler holds a component until the test lets go."""
import gevent.event


class Ledger:
    """A component a request uses while it runs; logs its lifecycle next to the request's."""

    def __init__(self):
        self.log = []
        self.in_use = 0
        self.release = gevent.event.Event()

    def start(self, app):
        self.log.append("start")

    def stop(self, app):
        self.log.append("stop (in use: %d)" % self.in_use)

    def use(self, what):
        ledger = self

        class _Use:
            def __enter__(self):
                ledger.in_use += 1
                ledger.log.append("begin " + what)

            def __exit__(self, *exc):
                ledger.in_use -= 1
                ledger.log.append("end " + what)
        return _Use()


def configure(app):
    ledger = Ledger()
    app.set("ledger", ledger)
    app.load(ledger)
    app.set("connectorConfig", {"heartbeat": 5})
    app.set("drainTimeout", 8)   # under the master's 10 s before it kills a stopping server
