"""`inlink.extract.extract` on served bytes reports exactly the links and facts of the truth."""

from __future__ import annotations

import pytest

from inlink.world import World
from inlink.world.render import renderer

FIELDS = ("target_url", "nofollow", "ugc", "sponsored", "alt", "text_pre", "text_post",
          "location", "links_count", "hreflang")
FACTS = ("title", "language", "encoding", "noindex", "nofollow", "canonical", "internal_links",
         "external_links", "base_url")


@pytest.mark.parametrize("day", [1, 3])
def test_extract_matches_truth_field_by_field(world: World, day: int) -> None:
    extract = pytest.importorskip("inlink.extract").extract
    r = renderer(world)
    checked = 0
    for p in range(0, world.n_pages, 53):
        url = world.url_of(p)
        resp = r.render(p, day)
        truth = world.page_links(url, day)
        if resp.misbehave or not truth:
            continue
        ex = extract(resp.body, url, resp.headers, status=resp.status)
        # Redirect links come from the fetcher (HTTP 3xx), not from the HTML extractor.
        want = {(t.kind.value, t.target_key, t.anchor, t.image_url): t.to_link()
                for t in truth if t.origin != "location"}
        got = {(lk.kind.value, lk.target_key, lk.anchor, lk.image_url): lk for lk in ex.links}
        assert set(got) == set(want), (url, set(got) ^ set(want))
        for k, t in want.items():
            for f in FIELDS:
                assert getattr(got[k], f) == getattr(t, f), (url, k, f)
        facts = world.page_truth(url, day)
        for f in FACTS:
            if f == "encoding" and facts.charset_declared == "none":
                continue  # undeclared: detection may legitimately differ on short pages
            assert getattr(ex.facts, f) == getattr(facts, f), (url, f)
        checked += 1
    assert checked > 200
