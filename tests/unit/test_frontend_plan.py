import pytest

from shared.frontend import IMMUTABLE, NO_CACHE, SHORT, cache_control, plan_publish


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
