"""The load tool (zpomelo.bench) against the bench app running in-process on free ports."""
import json
import os

import pytest
from click.testing import CliRunner

from zpomelo.bench import BenchError, BenchOptions, run_bench
from zpomelo.bench.cli import bench, summary_line
from zpomelo.bench.stats import Histogram, bucket_of, bucket_value, read_process
from zpomelo.testing import InProcessCluster

APP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "bench")


@pytest.fixture(scope="module")
def cluster():
    with InProcessCluster(APP_DIR, "test") as c:
        yield c


def options(cluster, **kw):
    kw.setdefault("clients", 4)
    kw.setdefault("duration", 1.0)
    kw.setdefault("warmup", 0.2)
    return BenchOptions(port=cluster.client_port("connector-server-1"), pids=(os.getpid(),), **kw)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["ws", "tcp"])
def test_echo_mode_reports_throughput_and_latency(cluster, transport):
    result = run_bench(options(cluster, mode="echo", transport=transport))
    json.loads(json.dumps(result))
    assert result["errors"] == 0, result["error_samples"]
    assert result["connected"] == 4
    assert result["requests"] > 0 and result["throughput"] > 0
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    server = result["server"][str(os.getpid())]
    assert server["rss_kb"] > 0 and server["cpu_percent"] > 0
    assert result["server_cpu_us_per_op"] > 0 and result["loadgen_cpu_us_per_op"] > 0
    (worker,) = result["loadgen_workers"]
    assert worker["pid"] != os.getpid() and worker["cpu_percent"] > 0
    assert 0 < result["machine"]["busy_percent"] <= 100
    assert result["saturated"]["process"] in (server["name"], "load worker %d" % worker["pid"])


@pytest.mark.timeout(60)
def test_two_workers_share_the_clients_and_report_their_own_cpu(cluster):
    result = run_bench(options(cluster, mode="echo", clients=5, inflight=4, workers=2))
    assert result["errors"] == 0, result["error_samples"]
    assert result["connected"] == 5 and result["workers"] == 2 and result["inflight"] == 4
    workers = result["loadgen_workers"]
    assert len({w["pid"] for w in workers}) == 2 and all(w["cpu_percent"] > 0 for w in workers)
    assert result["loadgen_cpu_percent"] == pytest.approx(sum(w["cpu_percent"] for w in workers), abs=1)


@pytest.mark.timeout(60)
def test_chat_mode_counts_pushes_to_every_member(cluster):
    result = run_bench(options(cluster, mode="chat", senders=2, inflight=2))
    assert result["errors"] == 0, result["error_samples"]
    assert result["requests"] > 0
    # every send reaches the 4 members; pushes in flight at the window's edges blur it a little
    assert result["pushes"] >= 3 * result["requests"]
    # latency is sampled on member 0 (of every LATENCY_EVERY): a quarter of the 4 members' pushes
    assert 0.2 * result["pushes"] <= result["push_latency_ms"]["count"] <= 0.3 * result["pushes"]


@pytest.mark.timeout(60)
def test_broadcast_mode_is_paced_by_delivery(cluster):
    result = run_bench(options(cluster, mode="broadcast", senders=2))
    assert result["errors"] == 0, result["error_samples"]
    assert result["requests"] == 0          # notifies: nothing answered
    assert result["pushes"] > 0 and result["pushes_per_s"] > 0
    assert 0.2 * result["pushes"] <= result["push_latency_ms"]["count"] <= 0.3 * result["pushes"]
    members = cluster["chat-server-1"].channel_service.get_channel(result["rid"])
    assert members is None or members.member_count <= 4


@pytest.mark.timeout(60)
def test_cli_prints_json_and_connect_mode_counts_connections(cluster, tmp_path):
    out = tmp_path / "connect.json"
    port = str(cluster.client_port("connector-server-1"))
    runner = CliRunner()
    result = runner.invoke(bench, ["--mode", "connect", "-P", port, "-c", "20", "-k", "5",
                                   "--pids", str(os.getpid()), "-o", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)          # the JSON on stdout, one summary line on stderr
    assert printed == json.loads(out.read_text())
    assert result.stderr.startswith("connect 20 clients: ") and "load tool " in result.stderr
    assert "nearest 100% of a core: " in result.stderr
    assert printed["connections"] == 20 and printed["errors"] == 0
    assert printed["connects_per_s"] > 0
    assert "server_rss_kb_per_connection" in printed


@pytest.mark.timeout(60)
def test_server_heartbeats_are_answered_one_interval_later_like_pomelo_clients(monkeypatch):
    """A heartbeat answered at once made every connection a ping-pong at the speed of its round
    trip (the server answers a client's heartbeat at once): thousands a second, paid by the
    server measured. A Pomelo client answers one heartbeat interval later (here 1 s)."""
    from zpomelo.connector.conn import Connection

    received = {}
    serve_heartbeat = Connection._on_heartbeat

    def counted(conn):
        received[conn.id] = received.get(conn.id, 0) + 1
        serve_heartbeat(conn)

    monkeypatch.setattr(Connection, "_on_heartbeat", counted)
    monkeypatch.setenv("BENCH_HEARTBEAT", "1")
    with InProcessCluster(APP_DIR, "test") as one_second:
        result = run_bench(BenchOptions(port=one_second.client_port("connector-server-1"),
                                        mode="echo", clients=4, inflight=2, duration=2.5, warmup=0.2))
    assert result["errors"] == 0, result["error_samples"]
    assert result["requests"] > 0
    # 2.7 s of load: each client answers 2 or 3 heartbeats (the probe connection none or one)
    assert len(received) >= 4, received
    assert all(1 <= count <= 4 for count in received.values()), received


@pytest.mark.timeout(60)
def test_paced_echo_sends_at_the_rate_asked_not_as_fast_as_answers_come(cluster):
    closed = run_bench(options(cluster, mode="echo", clients=2))
    paced = run_bench(options(cluster, mode="echo", clients=2, rate=100, duration=1.5))
    assert closed["errors"] == 0 and paced["errors"] == 0, paced["error_samples"]
    assert closed["throughput"] > 400 and "rate" not in closed
    assert paced["rate"] == 100 and paced["rate_kept"] is True
    assert 90 <= paced["throughput"] <= 105, paced
    assert paced["late"] <= 5      # a slot's answer later than its next send (20 ms apart here)
    assert 0 < paced["latency_ms"]["p50"] <= paced["latency_ms"]["max"]


@pytest.mark.timeout(60)
def test_paced_echo_shares_the_rate_between_workers(cluster):
    result = run_bench(options(cluster, mode="echo", clients=4, workers=2, inflight=2, rate=200,
                               duration=1.5))
    assert result["errors"] == 0, result["error_samples"]
    assert result["workers"] == 2 and result["rate_kept"] is True
    assert 180 <= result["throughput"] <= 210, result


@pytest.mark.timeout(60)
def test_a_rate_the_server_cannot_serve_is_reported_not_kept(cluster):
    result = run_bench(options(cluster, mode="echo", clients=2, rate=1000000))
    assert result["errors"] == 0, result["error_samples"]
    assert result["rate_kept"] is False and result["late"] > 0
    assert 0 < result["throughput"] < 970000
    line = summary_line(result)
    assert "paced at 1000000 req/s: NOT KEPT" in line, line


def test_a_closed_port_is_an_error_not_a_hang():
    result = run_bench(BenchOptions(mode="echo", port=1, clients=2, duration=0.3, warmup=0,
                                    connect_timeout=2))
    assert result["connected"] == 0
    assert result["errors"] == 2 and "connect" in result["error_samples"][0]
    assert result["throughput"] == 0


@pytest.mark.parametrize("bad", [dict(mode="flood"), dict(transport="udp"), dict(clients=0),
                                 dict(inflight=0), dict(duration=0), dict(mode="chat", senders=0),
                                 dict(port=0), dict(port=[3010, 70000]), dict(port="3010"),
                                 dict(rate=0), dict(rate=-5), dict(mode="chat", rate=100),
                                 dict(mode="connect", rate=100)])
def test_bad_options_are_refused(bad):
    with pytest.raises(BenchError):
        run_bench(BenchOptions(**bad))


def test_cli_passes_the_rate_on_and_refuses_it_outside_echo():
    result = CliRunner().invoke(bench, ["--mode", "chat", "--rate", "100"])
    assert result.exit_code == 1 and "rate paces echo requests only" in result.output, result.output


def test_cli_refuses_a_body_that_is_not_a_json_object():
    result = CliRunner().invoke(bench, ["--body", "[1, 2]"])
    assert result.exit_code != 0 and "JSON object" in result.output


def test_histogram_percentiles_and_merge():
    a, b = Histogram(), Histogram()
    for us in range(1, 1001):
        a.record(us / 1e6)
    b.record(0.5)
    merged = Histogram.from_json(json.loads(json.dumps(a.to_json()))).merge(b)
    assert merged.count == 1001 and merged.max_us == 500000
    assert abs(merged.percentile_us(0.5) - 500) <= 500 * 0.016
    assert abs(merged.percentile_us(0.99) - 990) <= 990 * 0.016
    assert merged.percentile_us(1.0) == 500000
    for us in (0, 1, 127, 128, 129, 1000, 123456, 10 ** 9):
        assert abs(bucket_value(bucket_of(us)) - us) <= max(0.5, us * 0.016)


def test_read_process_of_a_missing_pid_is_none():
    assert read_process(os.getpid())["rss_kb"] > 0
    assert read_process(2 ** 22 + 12345) is None
