import pytest

from localcloud.cloud import LocalCloud

LATENCY = {"build": 0.2, "migration": 0.1, "revision_ready": 0.05}


@pytest.fixture
def cloud():
    with LocalCloud(latency=dict(LATENCY)) as local:
        yield local
        assert local.functions.overran == [], "an invocation outlasted the function's timeout"


def ended(cloud, tag):
    def check():
        record = cloud.release(tag)
        return record if record and record["state"] in ("live", "failed", "rolled_back", "superseded") else None

    return check


def wait_ended(cloud, tag, timeout=30):
    return cloud.wait_for(ended(cloud, tag), timeout, what=f"{tag} to end")


def wait_settled(cloud, tag, timeout=30):
    """The release ended and its invocation finished its bookkeeping: the deploy lease is no longer its own (the
    thread's reply and the lease's freeing come after the record says live)."""
    def check():
        record = ended(cloud, tag)()
        lease = cloud.store().lease() if record else None
        return record if record and (lease is None or lease.tag != tag) else None

    return cloud.wait_for(check, timeout, what=f"{tag} to end and give its lease back")
