"""The real local servers: the Pub/Sub emulator and fake-gcs-server, started, used through the real clients, stopped.

Stopping must leave nothing behind: no process in the child's group and no listener on its port. The failure
paths are driven with small stand-in scripts, so they are fast and do not depend on timing of the JVM.
"""
from __future__ import annotations

import os
import socket
import stat
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1, storage

from localcloud.processes import (
    FakeGcsServer,
    MissingBinaryError,
    PubSubEmulator,
    ServerStartError,
    free_port,
)

PROJECT = "botbalance-prod"


def assert_gone(pid: int, port: int) -> None:
    """No process left in the child's group (the pid is its group id) and nothing listening on its port."""
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with socket.socket() as probe:  # and the port can be bound again
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / f"server-{uuid.uuid4().hex[:6]}.sh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture(scope="module")
def gcs() -> Iterator[FakeGcsServer]:
    with FakeGcsServer() as server:
        yield server


@pytest.fixture
def storage_client(gcs: FakeGcsServer, monkeypatch: pytest.MonkeyPatch) -> storage.Client:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint)
    return storage.Client(project=PROJECT, credentials=AnonymousCredentials())


@pytest.fixture
def bucket(storage_client: storage.Client) -> storage.Bucket:
    return storage_client.create_bucket(f"bucket-{uuid.uuid4().hex[:12]}")


# -- the Pub/Sub emulator ----------------------------------------------------------------------------------------------
def test_the_emulator_serves_pubsub_to_the_real_client_and_leaves_nothing_behind_when_stopped(monkeypatch):
    with PubSubEmulator(PROJECT) as emulator:
        pid, port = emulator.pid, emulator.port
        assert emulator.host == f"127.0.0.1:{port}"
        assert emulator.started_in is not None and emulator.started_in < 20
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        topic = publisher.topic_path(PROJECT, "cloud-builds")
        subscription = subscriber.subscription_path(PROJECT, "cloud-builds-test")
        publisher.create_topic(name=topic)
        subscriber.create_subscription(name=subscription, topic=topic)
        publisher.publish(topic, b'{"id": "b1"}', buildId="b1", status="SUCCESS").result(timeout=10)
        received = subscriber.pull(subscription=subscription, max_messages=1, timeout=10).received_messages
        subscriber.close()
    assert received[0].message.data == b'{"id": "b1"}'
    assert dict(received[0].message.attributes) == {"buildId": "b1", "status": "SUCCESS"}
    assert pid is not None
    assert_gone(pid, port)


def test_a_missing_emulator_binary_is_named_with_the_package_to_install(tmp_path):
    missing = tmp_path / "cloud-pubsub-emulator"
    with pytest.raises(MissingBinaryError, match="google-cloud-cli-pubsub-emulator") as raised:
        PubSubEmulator(PROJECT, binary=missing).start()
    assert str(missing) in str(raised.value)


def test_a_missing_java_runtime_is_named_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingBinaryError, match="Java 17"):
        PubSubEmulator(PROJECT, binary=script(tmp_path, "exit 0\n")).start()


def test_an_emulator_that_exits_at_once_reports_its_last_words(tmp_path):
    crashing = script(tmp_path, 'echo "Error: unable to access jarfile"\nexit 3\n')
    with pytest.raises(ServerStartError, match="exited with code 3") as raised:
        PubSubEmulator(PROJECT, binary=crashing).start()
    assert "unable to access jarfile" in str(raised.value)


def test_an_emulator_that_never_gets_ready_is_killed_when_the_wait_times_out(tmp_path):
    pid_file = tmp_path / "pid"
    hanging = script(tmp_path, f'echo $$ > {pid_file}\necho "starting"\nexec sleep 60\n')
    started = time.monotonic()
    with pytest.raises(ServerStartError, match="did not become ready"):
        PubSubEmulator(PROJECT, binary=hanging, startup_timeout=0.5).start()
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.killpg(int(pid_file.read_text()), 0)


def test_a_port_taken_before_the_emulator_binds_it_is_retried_on_another_port(tmp_path):
    # What the real emulator prints when its port is taken; its JVM then stays up without serving.
    attempts = tmp_path / "attempts"
    flaky = script(tmp_path, (
        f'echo x >> {attempts}\n'
        f'if [ "$(wc -l < {attempts})" -eq 1 ]; then\n'
        '  echo \'Exception in thread "main" java.net.BindException: Address already in use\'\n'
        '  exec sleep 60\n'
        'fi\n'
        'echo "INFO: Server started, listening on $2"\n'
        'exec sleep 60\n'
    ))
    with PubSubEmulator(PROJECT, binary=flaky) as emulator:
        pid = emulator.pid
    assert len(attempts.read_text().splitlines()) == 2
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_a_fixed_port_that_is_taken_fails_with_the_servers_own_message(tmp_path):
    taken = script(tmp_path, "echo 'Exception in thread \"main\" java.net.BindException: Address already in use'\n"
                             "exec sleep 60\n")
    with pytest.raises(ServerStartError, match="Address already in use"):
        PubSubEmulator(PROJECT, binary=taken, port=free_port()).start()


def test_stop_is_safe_before_start_and_twice():
    emulator = PubSubEmulator(PROJECT)
    emulator.stop()
    gcs = FakeGcsServer()
    gcs.stop()
    gcs.stop()


# -- fake-gcs-server ---------------------------------------------------------------------------------------------
def test_fake_gcs_server_answers_at_once_and_leaves_nothing_behind_when_stopped():
    server = FakeGcsServer().start()
    pid, port = server.pid, server.port
    try:
        assert server.endpoint == f"http://127.0.0.1:{port}"
        assert server.started_in is not None and server.started_in < 5
        assert server.running
    finally:
        server.stop()
    assert pid is not None
    assert_gone(pid, port)
    assert not server.running


def test_a_missing_fake_gcs_binary_is_named(tmp_path):
    with pytest.raises(MissingBinaryError, match="fake-gcs-server"):
        FakeGcsServer(binary=tmp_path / "fake-gcs-server").start()


def test_an_upload_that_must_create_fails_with_412_when_the_object_exists(bucket):
    bucket.blob("state/pointer.json").upload_from_string(b"{}", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("state/pointer.json").upload_from_string(b'{"live": "v2"}', if_generation_match=0)
    assert bucket.blob("state/pointer.json").download_as_bytes() == b"{}"


def test_compare_and_swap_succeeds_with_the_current_generation_and_fails_with_a_stale_one(bucket):
    blob = bucket.blob("state/lease.json")
    blob.upload_from_string(b'{"holder": "a"}', if_generation_match=0)
    first = bucket.get_blob("state/lease.json").generation
    bucket.blob("state/lease.json").upload_from_string(b'{"holder": "b"}', if_generation_match=first)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("state/lease.json").upload_from_string(b'{"holder": "c"}', if_generation_match=first)
    current = bucket.get_blob("state/lease.json")
    assert current.generation != first
    assert current.download_as_bytes() == b'{"holder": "b"}'


def test_copy_blob_copies_between_buckets_on_the_server(storage_client, bucket):
    source = bucket.blob("frontend/v1.0.0/assets/index-1a2b3c4d.js")
    source.upload_from_string(b"console.log(1)", content_type="text/javascript")
    live = storage_client.create_bucket(f"live-{uuid.uuid4().hex[:12]}")
    copied = bucket.copy_blob(bucket.get_blob(source.name), live, "assets/index-1a2b3c4d.js")
    fetched = live.get_blob("assets/index-1a2b3c4d.js")
    assert copied.name == fetched.name
    assert fetched.download_as_bytes() == b"console.log(1)"
    assert fetched.md5_hash == bucket.get_blob(source.name).md5_hash
    assert fetched.content_type == "text/javascript"


def test_a_blobs_public_url_downloads_from_the_local_server(gcs, bucket):
    import urllib.request

    blob = bucket.blob("index.html")
    blob.upload_from_string(b"<!doctype html>", content_type="text/html")
    assert blob.public_url.startswith(gcs.endpoint)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(blob.public_url, timeout=5) as response:
        assert response.read() == b"<!doctype html>"


def test_a_server_its_owner_forgot_to_stop_dies_with_the_owners_interpreter():
    import subprocess
    import sys

    owner = subprocess.run(
        [sys.executable, "-c", "from localcloud.processes import FakeGcsServer\n"
                               "server = FakeGcsServer().start()\n"
                               "print(server.pid, server.port, flush=True)\n"
                               "_keep = server  # exits without stop()\n"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=30, check=True,
    )
    pid, port = (int(value) for value in owner.stdout.split())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    assert_gone(pid, port)
