import pytest

from shared.frontend import (
    BASELINE,
    IMMUTABLE,
    NO_CACHE,
    SHORT,
    cache_control,
    plan_publish,
    release_prefix,
)


def test_copies_only_what_changed_assets_first_index_last():
    source = {"index.html": "i2", "assets/index-abc12345.js": "j2", "assets/vendor-ffff0000.js": "v",
              "robots.txt": "r", "about.html": "a2"}
    live = {"index.html": "i1", "assets/vendor-ffff0000.js": "v", "robots.txt": "r", "about.html": "a1"}
    plan = plan_publish(source, live)
    assert plan.assets == ("assets/index-abc12345.js",)
    assert plan.pages == ("about.html", "index.html")
    assert plan.unchanged == ("assets/vendor-ffff0000.js", "robots.txt")
    assert plan.copies[-1] == "index.html"


def test_nothing_to_copy_when_the_release_is_already_published():
    source = {"index.html": "i", "assets/index-abc12345.js": "j"}
    assert plan_publish(source, dict(source)).copies == ()


def test_an_empty_live_bucket_gets_everything():
    plan = plan_publish({"index.html": "i", "favicon.ico": "f"}, {})
    assert plan.copies == ("favicon.ico", "index.html")


@pytest.mark.parametrize(
    "path, expected",
    [("index.html", NO_CACHE), ("assets/index-4f3a9c1b.js", IMMUTABLE), ("assets/app.0a1b2c3d4e.css", IMMUTABLE),
     ("favicon.ico", SHORT), ("robots.txt", SHORT)],
    ids=["pages are never cached", "hashed scripts are immutable", "hashed styles are immutable",
         "unhashed icons are short-lived", "robots is short-lived"],
)
def test_caching_by_kind_of_file(path, expected):
    assert cache_control(path) == expected


@pytest.mark.parametrize("identity, prefix", [
    ("v1.4.0", "frontend/v1.4.0/"), ("v1.4.0.attempt-2", "frontend/v1.4.0.attempt-2/"), (None, "frontend/_baseline/"),
    ("release/1.0", "frontend/release%2F1.0/"), ("_baseline", "frontend/%5Fbaseline/"), ("50%", "frontend/50%25/"),
], ids=["a version reads as it is", "so does a retried attempt", "the frontend from before tagship",
        "a slash is escaped", "a leading underscore is escaped", "a percent sign is escaped"])
def test_a_releases_frontend_prefix_is_its_identity_with_what_could_meet_another_prefix_escaped(identity, prefix):
    assert release_prefix("frontend/", identity) == prefix


@pytest.mark.parametrize("one, other", [("0", "0/2"), (None, "_baseline"), ("a%2Fb", "a/b")],
                         ids=["a tag and a tag below it", "the baseline and a tag named like it",
                              "an escaped slash and a slash"])
def test_no_releases_frontend_prefix_holds_another_releases_files(one, other):
    """The tag fuzzing: `frontend/0/` listed the files of `0/2` too, and a tag `_baseline` was the baseline."""
    a, b = release_prefix("frontend/", one), release_prefix("frontend/", other)
    assert not a.startswith(b) and not b.startswith(a)
    assert BASELINE in release_prefix("frontend/", None)
