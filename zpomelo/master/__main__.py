"""The master process: python -m zpomelo.master --dir DIR --env ENV [--type T] [--id I]
[--master-id M] [--standby].

With masterHA in master.json the process stands for election (ha_runner.py): --master-id names
which of the configured masters it is, --standby makes it a standby (`zpomelo masterha`), which
reports {"ok": true, "standby": true, ...} as soon as it waits in the election.

`zpomelo start -D` runs this detached and reads one JSON line from --ready-fd: {"ok": true,
"port", "pid", "elapsed", "servers"} once every server registered, or {"ok": false, "error"}.
"""
import argparse
import json
import logging
import os
import shlex
import signal
import sys

import gevent

from zpomelo.errors import ZpomeloError
from zpomelo.master import ha_config, runstate
from zpomelo.master.ha_runner import run_ha_master
from zpomelo.master.master import START_TIMEOUT, Master

logger = logging.getLogger("zpomelo.master")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A testing hook: the command that runs one server, instead of `python -m zpomelo.server`.
SERVER_COMMAND_ENV = "ZPOMELO_SERVER_COMMAND"


def setup_logging(base_dir, to_stderr, log_name="master.log"):
    log_dir = runstate.log_dir(base_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(log_dir / log_name)]
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handlers


def server_command_from_env():
    value = os.environ.get(SERVER_COMMAND_ENV)
    return shlex.split(value) if value else None


def run_master(base_dir, env, only_type=None, only_id=None, ready=None,
               start_timeout=START_TIMEOUT, master_id=None, standby=False):
    """Run a master until it is told to exit; returns the process exit code.

    ``ready(dict)`` is called once: with {"ok": True, ...} when the cluster is up, or with
    {"ok": False, "error": ...} when it cannot start.
    """
    ready = ready or (lambda info: None)
    try:
        cfg = ha_config.load(base_dir, env)
        record = ha_config.master_record(base_dir, env, master_id) if cfg else None
    except ZpomeloError as e:
        logger.error("%s", e)
        ready({"ok": False, "error": str(e)})
        return 2
    if cfg is not None:
        def install_signals(handler):
            gevent.signal_handler(signal.SIGTERM, handler, True)
            gevent.signal_handler(signal.SIGINT, handler, True)
        return run_ha_master(base_dir, env, cfg, record, standby, only_type, only_id, ready,
                             start_timeout, server_command_from_env(), install_signals)
    if standby:
        ready({"ok": False, "error": "a standby master needs masterHA in config/master.json "
                                     "(see config/README.md)"})
        return 2
    try:
        master = Master(base_dir, env, only_type, only_id, server_command_from_env())
        master.start()
    except ZpomeloError as e:       # ConfigError included: nothing was started
        logger.error("%s", e)
        ready({"ok": False, "error": str(e)})
        return 2
    stopping = []

    def on_signal(graceful):
        if stopping:        # a second Ctrl-C: no more waiting
            graceful = False
        stopping.append(graceful)
        logger.info("signal received: %s stop of the cluster", "graceful" if graceful else "hard")
        gevent.spawn(master.shutdown, graceful)

    gevent.signal_handler(signal.SIGTERM, on_signal, True)
    gevent.signal_handler(signal.SIGINT, on_signal, True)
    gevent.wait([master.ready, master.done], count=1, timeout=start_timeout)
    code = master.report_start(ready, start_timeout)
    if code is not None:
        return code
    master.done.wait()
    master.close()
    logger.info("master exits")
    return 0


def _fd_reporter(fd):
    def report(info):
        try:
            os.write(fd, (json.dumps(info) + "\n").encode())
            os.close(fd)
        except OSError:     # the command line that started us is gone: nobody to tell
            pass
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zpomelo.master")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--env", default="development")
    parser.add_argument("--type", dest="only_type")
    parser.add_argument("--id", dest="only_id")
    parser.add_argument("--ready-fd", type=int)
    parser.add_argument("--master-id", help="masterHA: which master of master.json this is")
    parser.add_argument("--standby", action="store_true", help="masterHA: start as a standby")
    parser.add_argument("--log-stderr", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.dir, args.log_stderr,
                  "%s.log" % args.master_id if args.standby and args.master_id else "master.log")
    ready = _fd_reporter(args.ready_fd) if args.ready_fd is not None else None
    return run_master(args.dir, args.env, args.only_type, args.only_id, ready,
                      master_id=args.master_id, standby=args.standby)


if __name__ == "__main__":
    sys.exit(main())
