"""What a server answers over RPC: the framework's ``_sys`` service (zpomelo.sysapi) and the
game's remotes (app/servers/<type>/remote/<name>.py)."""
import logging

from zpomelo.errors import CODE_FAIL, RouteError, RpcError
from zpomelo.sysapi import SYS, SysService

logger = logging.getLogger(__name__)


class RemoteDispatcher:
    def __init__(self, app, remotes):
        self.app = app
        self.remotes = remotes  # {remote name: {function name: function}}
        self.sys = SysService(app)

    def replace(self, remotes):
        """Serve ``remotes`` from the next call on (zpomelo.reload); calls running keep theirs."""
        self.remotes = remotes

    def dispatch(self, service, method, args):
        if service == SYS:
            return self.sys.dispatch(method, args)
        functions = self.remotes.get(service)
        fn = functions.get(method) if functions is not None else None
        if fn is None:
            raise RouteError("no remote %s.%s.%s on %s" % (
                self.app.server_type, service, method, self.app.server_id))
        return fn(self.app, *args)

    def call_here(self, service, method, args):
        """Dispatch locally, failing the way a remote call would (RpcError with the type)."""
        try:
            return self.dispatch(service, method, args)
        except Exception as exc:
            code = getattr(exc, "code", CODE_FAIL)
            raise RpcError(str(exc), remote_type=type(exc).__name__,
                           code=code if isinstance(code, int) else CODE_FAIL,
                           server_id=self.app.server_id) from exc
