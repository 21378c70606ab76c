"""Progressive delivery's two figures, each beside the bound that limits it, measured in one run:

    python -m tools.bench.progressive          both (about a minute and a half on a 2-core machine)
    python -m tools.bench.progressive --json out.json

1. The fast watch with the production defaults, in real time: a look every 5 s inside the bake window, 3 failed
   checks to act, one Cloud Scheduler tick (no faster scheduler). A live release breaks a moment after the tick;
   from its first failed probe (the router's own log of what it answered) to all the API's traffic restored,
   against 20 s.
2. A canary of two steps (20 %, then 60 %, users' traffic from the load generator): push to all the API's traffic,
   against the sum of the steps' minimums (each step's window must be `min_seconds_per_step` long and end
   Monitoring's lag ago, so a step lasts at least both) plus the cloud's own work (the same push without a canary,
   measured in the same run), against 1.05x.

Everything runs on 127.0.0.1, one local cloud at a time; the functions run under the local functions host.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

from localcloud.cloud import LocalCloud
from localcloud.router import LoadGenerator
from shared.release import revision_name

LATENCY = {"build": 0.2, "migration": 0.1, "revision_ready": 0.05}
API = "botbalance-api"
STEP_SECONDS, LAG = 5.0, 1.0  # scaled down from 300 s and 180 s: the overhead per step is what stays
CANARY = {"steps": [20, 60], "min_seconds_per_step": STEP_SECONDS, "min_requests_per_step": 10,
          "max_seconds_per_step": 30.0, "inconclusive": "rollback"}
PRODUCTION_WATCH = {"fast_probe_seconds": 5.0, "tick_seconds": 60.0, "consecutive_failures": 3}


def _live(cloud: LocalCloud, tag: str, timeout: float = 90.0) -> dict[str, Any]:
    record = cloud.wait_for(lambda: (r := cloud.release(tag)) and r["state"] in ("live", "failed") and r, timeout,
                            what=f"{tag} to end")
    if record["state"] != "live":
        raise RuntimeError(f"{tag} did not go live: {record['error']}")
    return record


def fast_watch(say: Any) -> dict[str, float]:
    with LocalCloud(latency=dict(LATENCY), config={"watchdog": PRODUCTION_WATCH}, function_timeout=120.0) as cloud:
        for tag in ("v1.0.0", "v1.1.0"):
            cloud.push_tag(tag)
            _live(cloud, tag)
        bad = revision_name(API, "v1.1.0")
        cloud.tick_watchdog()  # the only tick: everything after is that invocation's looks
        time.sleep(2.0)
        broke_at = time.time()
        cloud.break_app("v1.1.0")
        cloud.wait_for(lambda: cloud.traffic(API) == {revision_name(API, "v1.0.0"): 100}, 60,
                       what="the API back on v1.0.0")
        restored_at = time.time()
        failed = [r.time for r in cloud.router.request_log
                  if r.revision == bad and r.time >= broke_at and r.status != 200 and "/api/health" in r.path]
        first_failed = min(failed)
        figures = {"first_failed_probe_to_restored_s": restored_at - first_failed,
                   "break_to_first_failed_probe_s": first_failed - broke_at, "bound_s": 20.0}
        say(f"fast watch: first failed probe to API restored {figures['first_failed_probe_to_restored_s']:.1f} s "
            f"(against {figures['bound_s']:.0f} s); the break met its first probe after "
            f"{figures['break_to_first_failed_probe_s']:.1f} s")
        return figures


def _to_all_traffic(record: dict[str, Any]) -> float:
    return record["steps"]["deploy_api"]["finished"] - record["history"][0][1]


def _pushes(config: dict[str, Any], tags: tuple[str, ...]) -> list[float]:
    with LocalCloud(latency=dict(LATENCY), config=config) as cloud:
        load = LoadGenerator(f"{cloud.router.base_url}/s/{API}", rps=60, paths=["/api/items"], max_seconds=120)
        load.start()
        try:
            took = []
            for tag in tags:
                cloud.push_tag(tag)
                took.append(_to_all_traffic(_live(cloud, tag)))
            return took
        finally:
            load.stop()


def canary(say: Any) -> dict[str, float]:
    tags = ("v1.0.0", "v1.1.0", "v1.2.0")
    plain = _pushes({}, tags)
    stepped = _pushes({"canary": CANARY, "watchdog": {"metrics_lag_seconds": LAG}}, tags)
    steps_minimum = len(CANARY["steps"]) * (STEP_SECONDS + LAG)
    work = statistics.median(plain)
    floor = steps_minimum + work
    took = statistics.median(stepped)
    figures = {"push_to_all_traffic_s": took, "steps_minimum_s": steps_minimum, "cloud_work_s": work,
               "ratio": took / floor, "bound_ratio": 1.05,
               "overhead_per_step_s": (took - floor) / len(CANARY["steps"])}
    say(f"canary of two steps: push to all the API's traffic {figures['push_to_all_traffic_s']:.2f} s (median of "
        f"{len(tags)}) against {floor:.2f} s (steps' minimums {steps_minimum:.1f} s + the cloud's own work "
        f"{work:.2f} s): {figures['ratio']:.3f}x (bound {figures['bound_ratio']}x), "
        f"{figures['overhead_per_step_s']:.2f} s of the canary's own per step")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.progressive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--only", choices=("fast_watch", "canary"))
    args = parser.parse_args(argv)
    say = lambda text: print(text, flush=True)  # noqa: E731
    say(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    results: dict[str, Any] = {}
    if args.only in (None, "fast_watch"):
        results["fast_watch"] = fast_watch(say)
    if args.only in (None, "canary"):
        results["canary"] = canary(say)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
