"""One server process: ``python -m zpomelo.server --dir DIR --env ENV --id ID [--master tcp://H:P]``.

Without ``--master`` the server takes its peers from servers.json as they are written (fixed ports).
SIGTERM / SIGINT stop it gracefully (drain, then exit).
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

from zpomelo import gcfreeze  # noqa: E402
from zpomelo.application import create_app  # noqa: E402
from zpomelo.config import ServerRecord, load_servers  # noqa: E402
from zpomelo.errors import ZpomeloError  # noqa: E402

logger = logging.getLogger("zpomelo.server")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(server_id, log_dir=None, level=None):
    level = level or os.environ.get("ZPOMELO_LOG_LEVEL", "INFO")
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_dir:
        os.makedirs(log_dir, exist_ok=True)
        handlers = [logging.FileHandler(os.path.join(log_dir, "%s.log" % server_id))]
    logging.basicConfig(level=level, format="%(asctime)s " + server_id + " %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m zpomelo.server", description=__doc__)
    p.add_argument("--dir", default=".", help="the project directory")
    p.add_argument("--env", default=os.environ.get("ZPOMELO_ENV", "development"))
    p.add_argument("--id", required=True, help="the server id in servers.json")
    p.add_argument("--master", default=None, help="the master's endpoint, tcp://host:port")
    p.add_argument("--record", default=None, help="the server record as JSON (servers added at run time)")
    p.add_argument("--log-dir", default=None)
    p.add_argument("--ready-file", default=None,
                   help="write the bound record as JSON to this file once started (tests, scripts)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.id, args.log_dir)
    try:
        if args.record:
            server = ServerRecord.from_dict(json.loads(args.record))
        else:
            server = args.id
        app = create_app(args.dir, args.env, server, args.master)

        def on_signal():
            logger.info("%s: signal received, stopping", app.server_id)
            gevent.spawn(app.stop)

        gevent.signal_handler(signal.SIGTERM, on_signal)
        gevent.signal_handler(signal.SIGINT, on_signal)
        # without a master, servers.json (fixed ports) is the membership, known before clients come
        app.start(static_peers=None if args.master else load_servers(app.base_dir, app.env))
    except ZpomeloError as exc:
        logger.error("%s", exc)
        sys.stderr.write("zpomelo server %s: %s\n" % (args.id, exc))
        return 2
    except OSError as exc:      # a port taken on this host: say which host, so `add` can tell
        message = "cannot start: %s; choose a port free on that host (or 0)" % (exc,)
        logger.error("%s", message)
        sys.stderr.write("zpomelo server %s: %s\n" % (args.id, message))
        return 2
    gcfreeze.freeze_what_start_loaded()
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(app.current_server.to_dict(), f)
        os.replace(tmp, args.ready_file)
    app.wait_stopped()
    return 0


if __name__ == "__main__":
    sys.exit(main())
