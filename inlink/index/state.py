"""What one fetch means for a page's links: its state, the links it keeps live, the lost reason.

A pure function of a FetchRecord; the writer applies it. The same rule is written down in
docs/data-model.md and implemented independently by the synthetic web's truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from xxhash import xxh3_64_intdigest

from inlink.extract import Link, LinkKind
from inlink.sources.record import FetchRecord
from inlink.urls import try_normalize_url


class PageState(StrEnum):
    """The outcome of a fetch, as far as link history is concerned."""

    INDEXABLE = "indexable"
    NOINDEX = "noindex"
    NOT_CANONICAL = "not_canonical"
    REDIRECT = "redirect"
    BROKEN_REDIRECT = "broken_redirect"
    NOT_FOUND = "page_not_found"
    CRAWL_ERROR = "crawl_error"
    DROPPED = "page_dropped"
    OTHER = "other"


#: The lost reason a link gets when its page leaves the INDEXABLE state (seed 001's list).
LOST_REASON: dict[PageState, str] = {
    PageState.NOINDEX: "noindex",
    PageState.NOT_CANONICAL: "not_canonical",
    PageState.REDIRECT: "redirect",
    PageState.BROKEN_REDIRECT: "broken_redirect",
    PageState.NOT_FOUND: "page_not_found",
    PageState.CRAWL_ERROR: "crawl_error",
    PageState.DROPPED: "page_dropped",
    PageState.OTHER: "other",
}
LINK_REMOVED = "link_removed"
LOST_REASONS = frozenset([*LOST_REASON.values(), LINK_REMOVED])


@dataclass(frozen=True, slots=True)
class Outcome:
    state: PageState
    live_links: list[Link]

    @property
    def lost_reason(self) -> str:
        """Why a link this page no longer keeps live was lost."""
        return LOST_REASON.get(self.state, LINK_REMOVED)


def classify(record: FetchRecord) -> Outcome:
    """Decide a fetched page's state and which of its links stay live.

    Order of checks (first match wins): robots disallow, no response, 5xx/429, 4xx, 3xx,
    non-HTML, noindex, canonical elsewhere. A redirecting page keeps its redirect link live and
    a non-canonical page keeps its canonical link(s) live, so indirect links can be followed.
    """
    status = record.status
    if record.robots_disallowed:
        return Outcome(PageState.DROPPED, [])
    if status is None or status >= 500 or status == 429:
        return Outcome(PageState.CRAWL_ERROR, [])
    if status >= 400:
        return Outcome(PageState.NOT_FOUND, [])
    if 300 <= status < 400:
        redirect = redirect_link(record.redirect_to) if record.redirect_to else None
        if redirect is None:
            return Outcome(PageState.OTHER, [])
        final = record.redirect_final_status
        broken = record.redirect_loop or (final is not None and final >= 400)
        return Outcome(PageState.BROKEN_REDIRECT if broken else PageState.REDIRECT, [redirect])
    extraction = record.extraction
    if status < 200 or extraction is None or not extraction.facts.is_html:
        return Outcome(PageState.OTHER, [])
    facts = extraction.facts
    if facts.noindex:
        return Outcome(PageState.NOINDEX, [])
    if facts.canonical and facts.canonical not in (facts.url, facts.url_key):
        canonical_key = try_normalize_url(facts.canonical)
        if canonical_key is not None and canonical_key != facts.url_key:
            kept = [link for link in extraction.links
                    if link.kind is LinkKind.CANONICAL and link.target_key == canonical_key]
            return Outcome(PageState.NOT_CANONICAL, kept)
    return Outcome(PageState.INDEXABLE, list(extraction.links))


def redirect_link(location: str) -> Link | None:
    """The link an HTTP redirect makes from the redirecting page to its Location."""
    key = try_normalize_url(location)
    if key is None:
        return None
    return Link(target_url=location, target_key=key, kind=LinkKind.REDIRECT, anchor="",
                nofollow=False, ugc=False, sponsored=False, alt=None, image_url=None,
                text_pre="", text_post="", location=None, links_count=1)


def hash64(text: str) -> int:
    """XXH3-64 of the text's UTF-8 (lone surrogates kept: surrogatepass), as a signed
    64-bit int: the hash of link ids and attribute hashes (schema 3; BLAKE2b-64 before)."""
    return signed64(xxh3_64_intdigest(text.encode("utf-8", "surrogatepass")))


def signed64(value: int) -> int:
    """An unsigned 64-bit value as the two's complement int64 DuckDB's BIGINT holds."""
    return value - (1 << 64) if value >= 1 << 63 else value


def link_id(source_key: str, link: Link) -> int:
    """Stable 64-bit identity of a link: (source, kind, target, anchor, image)."""
    # Fields joined by U+001F (unit separator), which normalized URLs and collapsed anchor
    # text cannot contain; None and "" are the same for image_url (never both meaningful).
    return hash64(f"{source_key}\x1f{link.kind.value}\x1f{link.target_key}\x1f{link.anchor}"
                   f"\x1f{link.image_url or ''}")


def link_attr_hash(link: Link) -> int:
    """Hash of the attributes that may change while the link keeps its identity."""
    return hash64(f"{link.target_url}\x1f{link.nofollow:d}{link.ugc:d}{link.sponsored:d}"
                   f"\x1f{link.alt}\x1f{link.text_pre}\x1f{link.text_post}\x1f{link.location}"
                   f"\x1f{link.links_count}\x1f{link.hreflang}")
