"""The benchmark's pieces run and produce numbers (no figure is judged here: timing belongs to `make bench`)."""
from __future__ import annotations

import math
import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tools.bench import benchmark as bench
from tools.bench.latency_proxy import LatencyProxy
from shared.frontend import INDEX, is_hashed_asset

SMOKE = bench.Settings(
    cold_samples=1, webhook_samples=3,
    latency={"build": 0.1, "migration": 0.1, "revision_ready": 0.05, "traffic": 0.05}, releases=1,
    tick_seconds=0.3, degrade_after=1.0, publish_files=60, publish_mb=0.5, rtt_ms=2.0, serial_sample=5,
    import_samples=1,
)


def number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_latency_proxy_forwards_requests_and_their_answers_unchanged():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with LatencyProxy(("127.0.0.1", server.server_port), rtt=0.002) as proxy:
            answers = [urllib.request.urlopen(f"{proxy.endpoint}/object/{i}", timeout=5).read() for i in range(3)]
            assert answers == [b"/object/0", b"/object/1", b"/object/2"]
            assert proxy.connections == 3 and proxy.chunks >= 6
    finally:
        server.shutdown()
        server.server_close()


def test_the_latency_proxy_refuses_anything_but_loopback():
    with pytest.raises(ValueError, match="loopback"):
        LatencyProxy(("8.8.8.8", 53), rtt=0.01)


def test_the_frontend_build_is_a_realistic_mix_with_index_html():
    build = bench.frontend_build(200, 2 * bench.MIB)
    assert len(build) == 200 and INDEX in build
    assert abs(sum(len(data) for data in build.values()) - 2 * bench.MIB) < 0.05 * bench.MIB
    assert sum(1 for path in build if is_hashed_asset(path)) > 150
    assert len({path.rsplit(".", 1)[-1] for path in build}) >= 6
    assert bench.frontend_build(200, 2 * bench.MIB) == build  # the same build every run


def test_statistics_helpers():
    assert bench.percentile([5.0, 1.0, 3.0], 99) == 5.0 and bench.median([3.0, 1.0, 2.0]) == 2.0
    assert bench.ratio(3.0, 2.0) == "1.50x" and bench.ratio(1.0, 0.0) == "n/a"


def test_a_bare_function_cold_start_and_an_import_cost_are_measured(tmp_path):
    (tmp_path / "main.py").write_text(bench.BARE_FUNCTION)
    log = open(tmp_path / "log", "wb")
    try:
        process, port, begun = bench.spawn_cli("bare", tmp_path / "main.py", "http", log)
        try:
            status, body = bench.until_answered(
                lambda: bench.post(f"http://127.0.0.1:{port}/", b"{}", {"Content-Type": "application/json"}), process)
        finally:
            bench.stop_process_group(process)
    finally:
        log.close()
    assert status == 200 and body == b"ok" and process.poll() is not None
    seconds, libraries = bench.import_cost(("json",), 1)
    assert number(seconds) and libraries == []


def test_the_publish_phase_copies_server_side_and_reports_its_figures():
    results = bench.run(SMOKE, lambda text: None, ("publish",))
    publish = results["publish"]
    assert publish["files"] == publish["copied"] == SMOKE.publish_files and publish["copied_again"] == 0
    assert publish["downloads"] == 0 and publish["uploads"] == 0 and publish["index_cache_control"] == "no-cache"
    for key in ("first", "second", "serial_estimate", "parallel_bound", "listing_floor", "per_copy", "first_cpu"):
        assert number(publish[key]), key
    assert "5. FRONTEND PUBLISH" in bench.report(results)


@pytest.fixture(scope="module")
def scenario():
    """Every phase but the publish, once, small: one local cloud, the functions each in its own process."""
    return bench.run(SMOKE, lambda text: None, ("cold", "webhook", "orchestration", "restore", "memory"))


def test_the_cold_start_phase_measures_every_target_and_which_libraries_it_loads(scenario):
    cold = scenario["cold_start"]
    assert number(cold["bare"]) and number(cold["ping"])
    assert [row["target"] for row in cold["rows"]] == list(bench.TARGETS)
    for row in cold["rows"]:
        assert number(row["cold"]) and number(row["bound"]) and number(row["imports"]), row["target"]
        assert row["statuses"] and all(200 <= status < 300 for status in row["statuses"]), row
    checks = cold["rows"][0]["libraries"]
    assert checks["after a GitHub ping"] == [] and checks["after a rejected signature"] == []


def test_the_webhook_orchestration_restore_and_memory_phases_produce_figures(scenario):
    hook = scenario["webhook"]
    assert hook["statuses"] == [202] and hook["samples"] == SMOKE.webhook_samples
    assert all(number(hook[key]) for key in ("median", "p99", "bound_median", "bound_p99", "remote_calls"))
    [release] = scenario["orchestration"]["rows"]
    assert number(release["push_to_live"]) and number(release["critical_path"])
    restore = scenario["restore"]
    assert all(number(restore[key]) for key in ("detection", "detection_bound", "rollback", "rollback_bound", "total"))
    assert set(restore["restored_after_request"]) == {"api", "worker", "frontend"}
    memory = scenario["memory"]
    assert [row["target"] for row in memory["rows"]] == list(bench.TARGETS)
    assert all(row["peak_rss"] > 0 and row["limit"] > 0 for row in memory["rows"])


def test_the_report_prints_every_figure_beside_its_bound(scenario):
    text = bench.report(scenario)
    for heading in ("1. COLD START", "2. WEBHOOK ANSWER", "3. ORCHESTRATION OVERHEAD", "4. TIME TO RESTORE",
                    "6. MEMORY"):
        assert heading in text
    assert len(re.findall(r"\d+\.\d\dx", text)) >= 12  # a ratio beside each figure


def test_the_build_graph_runs_the_frontend_beside_the_image_so_its_critical_path_is_the_longer_branch():
    from tools.bench.benchmark import BUILD_STEPS, build_graph

    graph = build_graph()
    scratch = graph["rows"][0]
    image_branch = BUILD_STEPS["image"] + BUILD_STEPS["push"]
    frontend_branch = BUILD_STEPS["frontend-install"] + BUILD_STEPS["frontend-build"] + BUILD_STEPS["frontend-upload"]
    assert scratch["critical"] == BUILD_STEPS["fetch"] + max(image_branch, frontend_branch)
    assert scratch["serial"] == sum(BUILD_STEPS.values()) and scratch["critical"] < scratch["serial"]
