"""The master's part of the metrics: its own /metrics and the Prometheus service-discovery file.

- The SD file (Prometheus ``file_sd_configs``) lists the master's and every registered server's
  /metrics endpoint (``host:metricsPort`` from the registration record) with the labels
  ``server_id`` and ``server_type`` (``master`` for the master). The master rewrites it when a
  server registers, changes its record or leaves, and empties it when the cluster is stopped.
  Written atomically (a temporary file, then rename), so Prometheus never reads half a file.
  Path: ``metricsSdFile`` in master.json (relative to the project), default
  ``logs/prometheus-targets-<env>.json``. With masterHA only the master that acts writes it.
- The master's /metrics (prometheus_client needed; ``metricsPort`` in master.json, default 0):
  restarts per server, registered servers by type, and the master process's CPU/RSS/fds.
"""
import json
import logging
import os
from pathlib import Path

from zpomelo.master import runstate
from zpomelo.metrics import INSTALL_HINT, library_available

logger = logging.getLogger(__name__)

SD_FILE_KEY = "metricsSdFile"
PORT_KEY = "metricsPort"
MASTER_TYPE = "master"


def sd_file_path(base_dir, env, configured=None):
    if configured:
        return Path(base_dir) / configured     # an absolute path stays as it is
    return runstate.log_dir(base_dir) / ("prometheus-targets-%s.json" % env)


def sd_entries(master_target, records):
    """The file's content: one group per endpoint, sorted by server id (a stable file)."""
    entries = []
    if master_target is not None:
        entries.append(master_target)
    for record in sorted(records, key=lambda r: str(r.get("id"))):
        port = record.get(PORT_KEY)
        if not port or not record.get("host"):
            continue        # metrics off on that server (or prometheus_client missing there)
        entries.append({"targets": ["%s:%s" % (record["host"], port)],
                        "labels": {"server_id": str(record["id"]),
                                   "server_type": str(record.get("serverType"))}})
    return entries


def write_atomically(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".%s.%d.tmp" % (path.name, os.getpid()))
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class MasterExporter:
    def __init__(self, master):
        self.master = master
        self.sd_path = sd_file_path(master.base_dir, master.env, master.record.extra.get(SD_FILE_KEY))
        self.port = None
        self._endpoint = None
        self._written = None

    def start(self):
        """Bind the master's /metrics (when the library is there), then write the SD file."""
        m = self.master
        configured_port = m.record.extra.get(PORT_KEY)
        if library_available():
            from prometheus_client import CollectorRegistry, ProcessCollector
            from zpomelo.metrics.endpoint import MetricsEndpoint
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            registry.register(_MasterCollector(m))
            endpoint = MetricsEndpoint(registry, m.record.host, int(configured_port or 0),
                                       m.record.id)
            self.port = endpoint.bind()
            endpoint.start()
            self._endpoint = endpoint
        elif configured_port is not None:
            logger.warning("master.json sets metricsPort but prometheus_client is not installed: "
                           "no /metrics for the master; %s", INSTALL_HINT)
        logger.info("Prometheus targets file: %s", self.sd_path)
        self.refresh()

    def _master_target(self):
        if self.port is None:
            return None
        return {"targets": ["%s:%s" % (self.master.record.host, self.port)],
                "labels": {"server_id": self.master.record.id, "server_type": MASTER_TYPE}}

    def refresh(self):
        """Rewrite the file if the endpoints changed (only while this master acts)."""
        if not self.master.acting():
            return
        self._write(sd_entries(self._master_target(), self.master.registry.records()))

    def clear(self):
        """The cluster is stopped: nothing to scrape."""
        self._write([])

    def _write(self, entries):
        if entries == self._written:
            return
        try:
            write_atomically(self.sd_path, entries)
            self._written = entries
        except OSError as e:
            logger.warning("cannot write the Prometheus targets file %s: %s", self.sd_path, e)

    def close(self):
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None


class _MasterCollector:
    """A prometheus_client collector (an object with collect()): read at scrape time."""

    def __init__(self, master):
        self.master = master

    def collect(self):
        from zpomelo.metrics.collect import by_type, counter, gauge
        m = self.master
        procs = sorted(m.supervisor.procs.values(), key=lambda p: p.server_id) \
            if m.supervisor is not None else []
        yield counter("server_restarts", "times the master restarted each server (auto-restart, "
                      "zpomelo restart)", ["server_id", "server_type"],
                      [((p.server_id, str(p.record.get("serverType"))), p.restarts) for p in procs])
        sizes = {}
        for record in m.registry.records():
            server_type = str(record.get("serverType"))
            sizes[server_type] = sizes.get(server_type, 0) + 1
        yield gauge("membership_servers", "servers registered with the master, by type",
                    ["server_type"], by_type(sizes))
