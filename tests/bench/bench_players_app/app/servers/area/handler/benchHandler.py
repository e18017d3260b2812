"""One bench phase on the backend: the same pushes to the same players, by uid or by channel."""
import time

import gevent


def run(app, msg, session):
    """{mode: "uid"|"channel", pushes, fanout, concurrency, uids} -> issue time and CPU here.

    Push i goes to the i % groups-th group of ``fanout`` consecutive uids: by
    app.push_to_uids (a directory lookup each) or by that group's channel (members added by uid).
    """
    mode, pushes, fanout = msg["mode"], msg["pushes"], msg["fanout"]
    uids = msg["uids"]
    groups = [uids[i:i + fanout] for i in range(0, len(uids), fanout)]
    channels = []
    if mode == "channel":
        for n, group in enumerate(groups):
            channel = app.channel_service.get_channel("bench-%d" % n, create=True)
            for uid in group:
                channel.add(uid)
            channels.append(channel)
    body = {"text": "x" * 32}
    next_index = [0]
    offline = [0]

    def worker():
        while next_index[0] < pushes:
            i = next_index[0]
            next_index[0] += 1
            if mode == "channel":
                channels[i % len(channels)].push("onBench", body)
            else:
                offline[0] += len(app.push_to_uids(groups[i % len(groups)], "onBench", body))
            if mode == "channel" and i % 200 == 199:
                gevent.sleep(0)      # let the bus writer run, as concurrent handlers would

    for key in ("lookups", "lookup_calls"):
        app.players.stats[key] = 0
    started, cpu = time.perf_counter(), time.process_time()
    gevent.joinall([gevent.spawn(worker) for _ in range(msg["concurrency"])])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    for n in range(len(channels)):
        app.channel_service.destroy_channel("bench-%d" % n)
    return {"issued_s": elapsed, "cpu_s": cpu, "offline": offline[0], "bus": dict(app.bus.stats),
            "players": dict(app.players.stats)}
