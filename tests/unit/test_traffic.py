import pytest

from shared.core.traffic import all_to, serving, split
from shared.ports import TrafficTarget


@pytest.mark.parametrize(
    "traffic, latest, expected",
    [
        ({"api-00001": 100}, "api-00002", "api-00001"),
        ({"api-00001": 10, "api-00002": 90}, "api-00002", "api-00002"),
        ({"api-00001": 50, "api-00002": 50}, "api-00001", "api-00002"),
        ({"api-00002": 50, "api-00001": 50}, "api-00001", "api-00002"),
        ({}, "api-00003", "api-00003"),
    ],
    ids=["one revision serves everything", "the larger share serves", "a tie goes to the greatest name",
         "whatever order Cloud Run listed them in", "with no traffic recorded, the latest ready revision"],
)
def test_the_serving_revision_is_the_one_with_most_traffic(traffic, latest, expected):
    assert serving(traffic, latest) == expected


def test_a_move_sends_all_traffic_to_one_revision_keeping_its_tag():
    assert all_to("api-v1-4-0-abc", "v1-4-0-abc") == [TrafficTarget("api-v1-4-0-abc", 100, "v1-4-0-abc")]
    with pytest.raises(ValueError):
        all_to("")



def test_a_canary_step_splits_the_traffic_keeping_both_tags():
    assert split("api-v1-4-0-abc", "api-v1-3-0-xyz", 10, candidate_tag="v1-4-0-abc") == [
        TrafficTarget("api-v1-4-0-abc", 10, "v1-4-0-abc"), TrafficTarget("api-v1-3-0-xyz", 90, "")]


@pytest.mark.parametrize(
    "candidate, stable, percent",
    [("api-2", "api-1", 0), ("api-2", "api-1", 100), ("api-1", "api-1", 50), ("", "api-1", 50)],
    ids=["no share is not a step", "all of it is a promotion, not a step", "a revision split with itself",
         "no candidate"],
)
def test_a_split_that_is_not_a_canary_step_is_refused(candidate, stable, percent):
    with pytest.raises(ValueError):
        split(candidate, stable, percent)
