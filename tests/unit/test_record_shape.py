"""Every record is parsed into its type or refused as corrupt, naming the object and what is wrong with it."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import CorruptRecord
from shared.release import Release, new_release
from shared.state import Lease, Pointer

GOOD = new_release("v1.0.0", "c0ffee", "alice", "d1", 1000.0).to_dict()


@pytest.mark.parametrize(
    "change, detail",
    [
        (lambda d: d.update(history="building"), "field 'history' has the wrong type: str 'building'"),
        (lambda d: d.update(history=[]), "a release needs its tag and a history"),
        (lambda d: d.update(history=[["building", "soon"]]), "field 'history' has the wrong type"),
        (lambda d: d.update(history=[["building", float("nan")]]), "field 'history' has the wrong type"),
        (lambda d: d.update(state="exploded"), "unknown state 'exploded'"),
        (lambda d: d.pop("commit"), "required field 'commit' is missing"),
        (lambda d: d.update(revisions={"api": 5}), "field 'revisions' has the wrong type"),
        (lambda d: d.update(traffic_moved="api"), "field 'traffic_moved' has the wrong type"),
        (lambda d: d.update(waiting="yes"), "field 'waiting' has the wrong type"),
        (lambda d: d.update(migration_started_at=True), "field 'migration_started_at' has the wrong type"),
        (lambda d: d.update(steps={"migrate": {"started": "now"}}), "field 'steps' has the wrong type"),
        (lambda d: d.update(previous={"api": ["x"]}), "field 'previous' has the wrong type"),
        (lambda d: d.update(tag=""), "a release needs its tag and a history"),
        (lambda d: d.pop("pushed_by"), "required field 'pushed_by' is missing"),
        (lambda d: d.update(github_deployment="17"), "field 'github_deployment' has the wrong type: str '17'"),
        (lambda d: d.update(github_deployment=0), "field 'github_deployment' has the wrong type: int 0"),
        (lambda d: d.update(github_deployment=True), "field 'github_deployment' has the wrong type"),
        (lambda d: d.update(github_status=["success"]), "field 'github_status' has the wrong type"),
    ],
    ids=["a history that is a string", "an empty history", "a time that is not a number", "a time that is nan",
         "a state that does not exist", "a missing commit", "a revision that is a number",
         "traffic moved as a string", "a flag as a string", "a true for a time", "a step time as text",
         "a previous unit with a list in it", "an empty tag", "a missing pusher",
         "a deployment id as text", "a deployment id of zero", "a deployment id that is a flag",
         "a deployment status as a list"],
)
def test_a_release_of_the_wrong_shape_is_corrupt_and_says_what_is_wrong(change, detail):
    data = {**GOOD}
    change(data)
    with pytest.raises(CorruptRecord) as error:
        Release.from_dict(data, "releases/v1.0.0.json", 7)
    assert detail in str(error.value) and error.value.name == "releases/v1.0.0.json" and error.value.generation == 7
    assert "state repair releases/v1.0.0.json" in str(error.value)


@pytest.mark.parametrize("data", [[], "release", 5, None], ids=["a list", "a string", "a number", "null"])
def test_a_release_that_is_not_an_object_is_corrupt(data):
    with pytest.raises(CorruptRecord, match="expected a JSON object"):
        Release.from_dict(data, "releases/v1.0.0.json")


def test_a_good_release_reads_back_as_it_was_written_and_unknown_fields_are_ignored():
    assert Release.from_dict({**GOOD, "added_later": {"x": 1}}).to_dict() == GOOD


@pytest.mark.parametrize(
    "data, expected",
    [
        ({}, Pointer()),
        ({"live": "v1", "previous": None, "timeline": [["v1", 5.0]], "changed_at": 5}, Pointer("v1", None, (("v1", 5.0),), 5.0)),
    ],
    ids=["an empty pointer serves nothing", "a pointer reads back"],
)
def test_a_pointer_reads_back(data, expected):
    assert Pointer.from_dict(data) == expected


@pytest.mark.parametrize(
    "data",
    [{"live": 5}, {"timeline": [["v1"]]}, {"timeline": "v1"}, {"changed_at": "now"}, ["v1"]],
    ids=["a live tag that is a number", "a timeline entry without its time", "a timeline that is a string",
         "a time as text", "a list"],
)
def test_a_pointer_of_the_wrong_shape_is_corrupt(data):
    with pytest.raises(CorruptRecord) as error:
        Pointer.from_dict(data)
    assert error.value.name == "pointer.json"


@pytest.mark.parametrize(
    "data, expected",
    [
        (None, None),
        ({"tag": "", "owner": "", "expires": 0}, None),
        ({"tag": "v1", "owner": "m1~ab", "expires": 2000}, Lease("v1", "m1~ab", 2000.0)),
    ],
    ids=["no record is free", "an ended lease is free", "a held lease reads back"],
)
def test_a_lease_reads_back(data, expected):
    assert Lease.parse(data) == expected


@pytest.mark.parametrize(
    "data", [{"tag": 5}, {"tag": "v1", "expires": "later"}, {"tag": "v1", "owner": None}, "v1"],
    ids=["a tag that is a number", "an expiry as text", "an owner that is null", "a string"],
)
def test_a_lease_of_the_wrong_shape_is_corrupt(data):
    with pytest.raises(CorruptRecord):
        Lease.parse(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
release_like = st.fixed_dictionaries({}, optional={key: json_values for key in GOOD}).map(lambda d: {**GOOD, **d})
release_missing = st.sets(st.sampled_from(sorted(GOOD))).map(lambda gone: {k: v for k, v in GOOD.items() if k not in gone})


@settings(max_examples=150, deadline=None)
@given(st.one_of(json_values, release_like, release_missing))
def test_any_json_in_a_release_record_reads_as_a_release_or_is_corrupt_never_anything_else(data):
    try:
        release = Release.from_dict(data, "releases/v1.0.0.json")
    except CorruptRecord:
        return
    release.to_dict()  # what was read can be written back
    assert release.state and release.history


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_any_json_in_the_pointer_or_lease_reads_or_is_corrupt(data):
    for parse in (Pointer.from_dict, Lease.parse):
        try:
            parse(data)
        except CorruptRecord:
            pass


def test_a_release_without_a_github_deployment_reads_as_none_and_one_with_it_keeps_its_id():
    old = {key: value for key, value in GOOD.items() if not key.startswith("github_")}
    assert Release.from_dict(old).github_deployment is None
    kept = Release.from_dict({**GOOD, "github_deployment": 17, "github_status": "success"})
    assert (kept.github_deployment, kept.github_status) == (17, "success")
