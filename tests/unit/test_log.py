import io
import json

from shared import log


def test_lines_are_json_cloud_logging_reads_with_the_tag_as_label(monkeypatch):
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        log.logger.bind(tag="v1.4.0", trace="projects/p/traces/abc").warning("deploy stopped", step="api")
    finally:
        log.set_stream(None)
    entry = json.loads(stream.getvalue())
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "deploy stopped"
    assert entry["logging.googleapis.com/labels"]["tag"] == "v1.4.0"
    assert entry["logging.googleapis.com/trace"] == "projects/p/traces/abc"
    assert entry["step"] == "api"


def test_secret_values_are_masked(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret-token")
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        log.logger.error("slack failed with xoxb-very-secret-token in the URL")
    finally:
        log.set_stream(None)
    assert "xoxb-very-secret-token" not in stream.getvalue()
    assert "***" in stream.getvalue()


def test_trace_header_becomes_the_trace_field():
    assert log.trace_from_header("105445aa7843bc8bf206b12000100000/1;o=1", "p") == "projects/p/traces/105445aa7843bc8bf206b12000100000"
    assert log.trace_from_header(None, "p") is None


def test_a_field_from_outside_is_bounded_by_what_it_costs_in_the_line_not_only_by_its_length():
    """The outside-text fuzzing: a tag of two million characters outside ASCII, cut to 2000 of them, still made a
    line of over 20 000 (each one written as `\\uXXXX`, or two of those)."""
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        wide = "\U00072030\x1b" * 1_000_000
        log.logger.bind(tag=wide, delivery=wide).error("corrupt record", record=f"releases/{wide}.json", detail=wide)
        log.logger.info("plain", reason="x" * 1500)
    finally:
        log.set_stream(None)
    wide_line, plain_line = stream.getvalue().splitlines()
    assert len(wide_line) < 3 * (log.MAX_FIELD + 64) + 2 * (log.MAX_LABEL + 64) + 300
    entry = json.loads(wide_line)
    assert entry["record"].startswith("releases/\U00072030") and "[2000014 characters]" in entry["record"]
    assert json.loads(plain_line)["reason"] == "x" * 1500  # what fits is written whole
