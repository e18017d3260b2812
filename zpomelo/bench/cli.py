"""``zpomelo bench``: load any Pomelo-protocol frontend and print the results as JSON."""
import json
import sys

import click

from zpomelo.bench.load import MODES, BenchError, BenchOptions, run_bench


def _parse_pids(values):
    pids = []
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                pids.append(int(part))
            except ValueError:
                raise click.BadParameter("%r is not a process id" % part, param_hint="--pids")
    return tuple(pids)


def _parse_body(value):
    if value is None:
        return None
    try:
        body = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter("not valid JSON: %s" % exc, param_hint="--body")
    if not isinstance(body, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{\"hello\": \"world\"}'",
                                 param_hint="--body")
    return body


@click.command("bench", context_settings=dict(help_option_names=["--help"]))
@click.option("--mode", type=click.Choice(MODES), default="echo", show_default=True,
              help="echo: requests on --route; chat: senders send chat.chatHandler.send to a channel "
                   "everyone joined, pushes counted; broadcast: like chat with notifies paced by "
                   "delivery; connect: connections + handshakes per second.")
@click.option("-h", "--host", default="127.0.0.1", show_default=True)
@click.option("-P", "--port", type=int, multiple=True, default=[3010], show_default=True,
              help="the frontend's client port; repeat it to deal the clients over several frontends")
@click.option("--transport", type=click.Choice(["ws", "tcp"]), default="ws", show_default=True)
@click.option("-c", "--clients", type=int, default=50, show_default=True)
@click.option("-k", "--inflight", type=int, default=None,
              help="requests in flight per client (default 1); connect mode: handshakes in "
                   "progress at once per worker (default 50)")
@click.option("-d", "--duration", type=float, default=10.0, show_default=True,
              help="seconds measured (after the warmup)")
@click.option("--warmup", type=float, default=1.0, show_default=True, help="seconds not measured")
@click.option("--route", default=None, help="echo: chat.chatHandler.echo; chat: chat.chatHandler.send")
@click.option("--body", default=None, help='echo request body as JSON (default {"hello": "world"})')
@click.option("--senders", type=int, default=10, show_default=True, help="chat/broadcast senders")
@click.option("--rid", default=None, help="chat/broadcast channel (default: a fresh one per run)")
@click.option("-w", "--workers", type=int, default=1, show_default=True,
              help="load processes (the clients are spread over them)")
@click.option("--coalesce-us", type=int, default=0, show_default=True,
              help="after a wake-up that found few sockets ready, wait this long (µs) so the next "
                   "answers are read together: fewer wake-ups of the tool, but up to this much "
                   "added to every round trip (and so fewer requests/s in a closed loop)")
@click.option("--rate", type=float, default=None,
              help="echo: send this many requests per second in all (each in-flight slot on a "
                   "fixed schedule) instead of the next on each answer: CPU per request at a "
                   "given load, the same for every server or route compared")
@click.option("--pids", multiple=True, help="server pids to sample (CPU, RSS); comma-separated or repeated")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="per-request timeout (s)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="also write the JSON result to this file")
def bench(mode, host, port, transport, clients, inflight, duration, warmup, route, body, senders,
          rid, workers, coalesce_us, rate, pids, timeout, output):
    """Put load on a Pomelo-protocol frontend (zpomelo, pinus, Pomelo) and print JSON results:
    throughput, latency p50/p90/p99/max, errors, the CPU/RSS of the --pids servers and their CPU
    per operation, the load tool's own CPU per worker process, and which process was nearest
    100% of a core (also as one line on stderr)."""
    options = BenchOptions(mode=mode, host=host, port=list(port), transport=transport, clients=clients,
                           inflight=inflight, duration=duration, warmup=warmup, route=route,
                           body=_parse_body(body), senders=senders, rid=rid, workers=workers,
                           pids=_parse_pids(pids), timeout=timeout, coalesce_us=coalesce_us,
                           rate=rate)
    try:
        result = run_bench(options)
    except BenchError as exc:
        click.echo("error: %s" % exc, err=True)
        sys.exit(1)
    click.echo(summary_line(result), err=True)
    text = json.dumps(result, indent=2)
    if output:
        with open(output, "w") as f:
            f.write(text + "\n")
    click.echo(text)
    if result["errors"] and not result.get("throughput"):
        sys.exit(1)


def summary_line(result):
    """One human line (on stderr; stdout keeps the JSON): throughput, the servers' and the load
    tool's CPU side by side, and which process was nearest 100% of a core."""
    unit = {"connect": "conn/s", "echo": "req/s"}.get(result["mode"], "pushes/s")
    parts = ["%s %d clients: %s %s, %d errors" % (result["mode"], result["clients"],
                                                   result.get("throughput"), unit, result["errors"])]
    if result.get("rate"):
        parts[0] += " (paced at %s req/s%s, %d late)" % (
            result["rate"], "" if result["rate_kept"] else ": NOT KEPT, the server fell behind",
            result["late"])
    servers = [s for s in result.get("server", {}).values() if "cpu_percent" in s]
    if servers:
        parts.append("server CPU %s µs/op (%s)" % (result.get("server_cpu_us_per_op"), ", ".join(
            "%s %s%%" % (s["name"], s["cpu_percent"]) for s in servers)))
    parts.append("load tool %s%% = %s µs/op (%s)" % (
        result["loadgen_cpu_percent"], result.get("loadgen_cpu_us_per_op"),
        ", ".join("worker %s %s%%" % (w["pid"], w["cpu_percent"]) for w in result["loadgen_workers"])))
    verdict = result.get("saturated")
    if verdict:
        parts.append("nearest 100%% of a core: %s %s%%%s" % (
            verdict["process"], verdict["cpu_percent"],
            " (machine full: every core busy)" if verdict.get("machine_full") else ""))
    return " | ".join(parts)


def main():
    bench()


if __name__ == "__main__":
    main()
