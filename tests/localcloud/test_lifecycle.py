"""The local cloud comes up in seconds and goes down without leaving anything behind, even after a failure."""
from __future__ import annotations

import os
import socket

import pytest

from localcloud.cloud import SHARE_EMULATOR_ENV, LocalCloud


@pytest.fixture(autouse=True)
def own_emulator(monkeypatch):
    """Each cloud here starts (and stops) an emulator of its own: what is checked is that nothing outlives it."""
    monkeypatch.delenv(SHARE_EMULATOR_ENV, raising=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _listening(host_port: str) -> bool:
    host, port = host_port.replace("http://", "").rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, int(port))) == 0


def test_starts_every_part_and_stops_all_of_it_on_exit():
    with LocalCloud() as cloud:
        pids = [cloud.emulator.pid, cloud.gcs.pid]
        endpoints = [cloud.pubsub_host, cloud.storage_endpoint, cloud.grpc_address, cloud.router.base_url,
                     cloud.functions.base_url, cloud.slack.base_url.rstrip("/").rsplit("/", 1)[0]]
        assert all(_alive(pid) for pid in pids)
        assert all(_listening(endpoint.replace("http://", "")) for endpoint in endpoints)
        assert cloud.started_in < 10
        env_inside = os.environ.get("TAGSHIP_GRPC_ENDPOINT")
    assert env_inside == cloud.grpc_address
    assert not any(_alive(pid) for pid in pids)
    assert not any(_listening(endpoint.replace("http://", "")) for endpoint in endpoints)
    assert "TAGSHIP_GRPC_ENDPOINT" not in os.environ or os.environ["TAGSHIP_GRPC_ENDPOINT"] != env_inside


def test_a_failure_inside_the_block_still_stops_everything():
    with pytest.raises(RuntimeError, match="scenario went wrong"):
        with LocalCloud(functions=False) as cloud:
            pids = [cloud.emulator.pid, cloud.gcs.pid]
            raise RuntimeError("scenario went wrong")
    assert not any(_alive(pid) for pid in pids)


def test_a_failure_while_starting_stops_what_had_started(monkeypatch):
    started: list[int] = []
    from localcloud import cloud as cloud_module

    original = cloud_module.LocalCloud._seed_world

    def broken_seed(self):
        started.extend([self.emulator.pid, self.gcs.pid])
        raise RuntimeError("seed failed")

    monkeypatch.setattr(cloud_module.LocalCloud, "_seed_world", broken_seed)
    with pytest.raises(RuntimeError, match="seed failed"):
        with LocalCloud(functions=False):
            pass
    monkeypatch.setattr(cloud_module.LocalCloud, "_seed_world", original)
    assert started and not any(_alive(pid) for pid in started)


def test_clouds_sharing_one_emulator_each_meet_only_their_own_topics(monkeypatch):
    from google.cloud import pubsub_v1

    monkeypatch.setenv(SHARE_EMULATOR_ENV, "1")
    with LocalCloud(functions=False) as first:
        publisher = pubsub_v1.PublisherClient()
        publisher.create_topic(name=publisher.topic_path(first.project, "left-behind"))
        emulator = first.emulator
    with LocalCloud(functions=False) as second:
        publisher = pubsub_v1.PublisherClient()
        names = {t.name.rsplit("/", 1)[-1] for t in publisher.list_topics(request={"project": f"projects/{second.project}"})}
        assert second.emulator is emulator
    assert names == set(second._topics().values())
