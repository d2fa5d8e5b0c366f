"""What telling the other processes of a change costs (cite_live.broadcast); figures go in
BENCHMARKS.md.

    .venv/bin/python bench/broadcast.py [--redis URL] [--messages N]

Two Broadcasts on one Redis namespace of the run's own, as two processes of an installation
hold them (one listening, as a web process does). ``--messages`` (2000) messages are sent one
after another by the first: the time ``send`` takes (what a commit that changed the catalogue
waits for), and the time from the start of ``send`` to the second one's handler (how long a
page kept by another web process can still be served after the commit). Then the same sends
with Redis unreachable (port 1): what a commit waits while Redis is down. Medians and 99th
percentiles, in microseconds.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import threading
import time

from cite_live.broadcast import Broadcast


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) * 1e6:.0f} µs, p99 {p99 * 1e6:.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    namespace = f"bench-broadcast-{secrets.token_hex(4)}"
    sender, listener = Broadcast(args.redis, namespace), Broadcast(args.redis, namespace)
    heard = threading.Event()
    listener.on("catalogue", lambda _words: heard.set())
    listener.listen(wait=5)
    assert listener.listening.is_set(), "the listener could not subscribe"
    sends: list[float] = []
    deliveries: list[float] = []
    try:
        for _ in range(args.messages):
            heard.clear()
            start = time.perf_counter()
            sender.send("catalogue")
            sent = time.perf_counter()
            if not heard.wait(5):
                raise SystemExit("a message was lost")
            deliveries.append(time.perf_counter() - start)
            sends.append(sent - start)
    finally:
        sender.close()
        listener.close()
    print(f"send (Redis up): {percentiles(sends)}")
    print(f"send to the other process's handler: {percentiles(deliveries)}")
    down = Broadcast("redis://127.0.0.1:1/0", namespace)
    waits = []
    for _ in range(min(args.messages, 200)):
        start = time.perf_counter()
        down.send("catalogue")
        waits.append(time.perf_counter() - start)
    down.close()
    print(f"send (Redis down, connection refused): {percentiles(waits)}")


if __name__ == "__main__":
    main()
