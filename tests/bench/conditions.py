"""Monitor-condition evaluation speed: the timings tests/test_conditions.py must not assert.

    python tests/bench/conditions.py [--rounds R] [--calls N]

Each figure is the best of R rounds of N calls, in microseconds per call (the glob worst case
is timed once per round):

- status_lt_400_us: Condition.evaluate of "[STATUS] < 400", the default HTTP condition
  (about 1-2 us on a laptop; the old unit test allowed 50 us);
- three_with_body_path_us: evaluate_all of three conditions, two of them JSON paths into a
  small body, so the body is decoded once per call;
- glob_adversarial_us: pat() of "*a*a*a*a*a*a*a*a*b" against 200,000 "a"s, which must stay
  linear (the old unit test allowed 500 ms).

Progress goes to stderr; the only line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from dragonopsd.monitoring.conditions import evaluate_all, parse, parse_all
from dragonopsd.monitoring.wildcard import Glob

BODY = msgspec.json.encode({"data": {"status": "UP"}, "items": [{"id": 5}, {"id": 7}]})
THREE = ["[STATUS] == 200", "[BODY].data.status == UP", "len([BODY].items) == 2"]


def best_per_call(fn: Callable[[], Any], calls: int, rounds: int) -> float:
    """The fastest round's seconds per call; the minimum is the least noisy on a shared host."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()

    status = parse("[STATUS] < 400")
    status_ctx = {"STATUS": 200}
    assert status.evaluate(status_ctx).success
    print("status < 400 ...", file=sys.stderr)
    status_s = best_per_call(lambda: status.evaluate(status_ctx), args.calls, args.rounds)

    three = parse_all(THREE)
    three_ctx = {"STATUS": 200, "BODY": BODY}
    assert all(r.success for r in evaluate_all(three, three_ctx))
    print("three with a body path ...", file=sys.stderr)
    three_s = best_per_call(lambda: evaluate_all(three, three_ctx), args.calls, args.rounds)

    glob, text = Glob.compile("*a*a*a*a*a*a*a*a*b"), "a" * 200_000
    assert not glob.match(text)
    print("glob worst case ...", file=sys.stderr)
    glob_s = best_per_call(lambda: glob.match(text), 1, args.rounds)

    result = {
        "bench": "conditions",
        "status_lt_400_us": round(status_s * 1e6, 3),
        "three_with_body_path_us": round(three_s * 1e6, 3),
        "glob_adversarial_us": round(glob_s * 1e6, 3),
        "calls": args.calls,
        "rounds": args.rounds,
    }
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
