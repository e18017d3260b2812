"""Global filters: run on a frontend for every client request, before it is forwarded to a
backend or handled locally (Pomelo's ``app.globalBefore`` / ``globalAfter`` / ``globalFilter``).

A before filter is ``before(route, msg, session)`` (or a plain function of those arguments): it
returns None to let the request go on, or a response body to refuse it: the client gets that body
as the answer and no handler, local or on a backend, ever sees the request. Raising
``HandlerError(body)`` refuses with that body too; any other exception refuses with
``{"code": 500, "error": "internal server error"}`` and is logged (a broken filter must not let
requests through unchecked). An after filter is ``after(route, msg, session, response, error)``:
it sees the answer just before it is written (``error`` is the failure, if the request failed);
what it returns is ignored and an exception it raises is logged, the answer is kept.

Notifies (requests without an id) go through the before filters too; a refused notify is dropped.
After filters run only for requests (a notify has no answer).

Where they run: before filters in the client's connection reader (blocking there holds only that
client); after filters of forwarded requests in the RPC reply reader, so they must not block.
"""
import logging

from zpomelo.errors import CODE_FAIL, HandlerError
from zpomelo.handler import FilterChain

logger = logging.getLogger(__name__)

_BROKEN = {"code": CODE_FAIL, "error": "internal server error"}


class GlobalFilters(FilterChain):
    """The frontend's global filter chain (``app.global_filters``) and how it runs."""

    def __init__(self):
        super().__init__()
        self.stats = {"refused": 0, "errors": 0}

    def __bool__(self):
        return bool(self.before or self.after)

    def run_before(self, route, msg, session):
        """None to go on, else the body the client gets instead."""
        for before in self.before:
            try:
                refusal = before(route, msg, session)
            except HandlerError as exc:
                refusal = exc.body
            except Exception:
                self.stats["errors"] += 1
                logger.exception("global before filter %r failed on %s: request refused", before, route)
                refusal = dict(_BROKEN)
            if refusal is not None:
                self.stats["refused"] += 1
                return refusal if isinstance(refusal, dict) else {"code": CODE_FAIL, "error": str(refusal)}
        return None

    def run_after(self, route, msg, session, response, error=None):
        for after in self.after:
            try:
                after(route, msg, session, response, error)
            except Exception:
                self.stats["errors"] += 1
                logger.exception("global after filter %r failed on %s (the answer is kept)", after, route)
