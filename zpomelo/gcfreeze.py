"""Keep what a server loaded at start out of the cyclic garbage collector's sight.

A server process holds tens of thousands of objects from start to exit (modules, functions,
classes, config, routing tables). CPython's full collections walk every tracked object, so each
one a connector made while clients connected also walked all of those again. ``gc.freeze()``
after start moves them to a generation the collector never examines: full collections walk only
what clients and requests made since (measured in INTERNALS.md, "Garbage collection").
Frozen objects are never collected, so after a hot reload, which leaves the old game modules
behind (a module and its functions refer to each other: only the collector frees them), the
frozen set is released, collected and frozen again.
"""
import gc
import logging

logger = logging.getLogger(__name__)


def freeze_what_start_loaded():
    """Collect what start left over, then freeze the rest (once the server is started)."""
    gc.collect()
    gc.freeze()
    logger.debug("%d objects frozen out of the garbage collector's sight", gc.get_freeze_count())


def refreeze():
    """After code was replaced: let the collector see the frozen objects again, collect what is
    garbage now, and freeze what is left. Nothing is done in a process that never froze."""
    if gc.get_freeze_count() == 0:
        return
    gc.unfreeze()
    freeze_what_start_loaded()
