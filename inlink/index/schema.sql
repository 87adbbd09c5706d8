-- inlink index schema (DuckDB). One vocabulary with Python and JSON; see docs/data-model.md.
-- Times are UTC TIMESTAMPs; `day` columns are their UTC dates.

CREATE TABLE IF NOT EXISTS meta (
    key   VARCHAR NOT NULL,
    value VARCHAR NOT NULL
);

-- The latest known state of every page we fetched (one row per url_key).
CREATE TABLE IF NOT EXISTS pages (
    url_key        VARCHAR NOT NULL,
    url            VARCHAR NOT NULL,
    host           VARCHAR NOT NULL,
    domain         VARCHAR NOT NULL,
    first_crawl    TIMESTAMP NOT NULL,
    last_crawl     TIMESTAMP NOT NULL,
    fetch_id       BIGINT NOT NULL,      -- the fetch that produced this state
    status         INTEGER,              -- NULL: no HTTP response (see error)
    state          VARCHAR NOT NULL,     -- index.state.PageState
    error          VARCHAR,
    ip             VARCHAR,
    country        VARCHAR,
    content_type   VARCHAR,
    title          VARCHAR,
    language       VARCHAR,
    encoding       VARCHAR,
    size           BIGINT,
    internal_links INTEGER,
    external_links INTEGER,
    noindex        BOOLEAN,
    nofollow       BOOLEAN,
    canonical      VARCHAR,
    redirect_to    VARCHAR,
    link_ids       BIGINT[],             -- links this page keeps live, with their attribute
    link_hashes    BIGINT[]              -- hashes: the writer diffs a re-fetch against them
);

-- Every fetch applied, with the evidence to re-open its bytes.
CREATE TABLE IF NOT EXISTS fetches (
    fetch_id        BIGINT NOT NULL,
    batch_id        BIGINT NOT NULL,
    url_key         VARCHAR NOT NULL,
    url             VARCHAR NOT NULL,
    fetched_at      TIMESTAMP NOT NULL,
    status          INTEGER,
    state           VARCHAR NOT NULL,
    applied         BOOLEAN NOT NULL,    -- false: older than the page's latest fetch
    source          VARCHAR NOT NULL,    -- crawl | warc | wat | import
    ip              VARCHAR,
    evidence_path   VARCHAR,
    evidence_offset BIGINT,
    evidence_digest VARCHAR
);

-- One row per link identity (source, kind, target, anchor, image) ever seen.
-- Kept physically ordered by target (see Store.compact) so a target's rows are read
-- without scanning the table.
CREATE TABLE IF NOT EXISTS links (
    link_id        BIGINT NOT NULL,
    target_domain  VARCHAR NOT NULL,
    target_host    VARCHAR NOT NULL,
    target_key     VARCHAR NOT NULL,
    target_url     VARCHAR,              -- as the page wrote it (resolved); NULL: target_key
                                         -- (schema 4; most URLs are their key, and NULL
                                         -- costs the writer and the file less)
    source_key     VARCHAR NOT NULL,
    source_url     VARCHAR,              -- as fetched; NULL: source_key (schema 4)
    source_host    VARCHAR NOT NULL,
    source_domain  VARCHAR NOT NULL,
    source_ip      VARCHAR,
    source_subnet  VARCHAR,
    source_country VARCHAR,
    internal       BOOLEAN NOT NULL,     -- same registrable domain: not a backlink
    kind           VARCHAR NOT NULL,     -- extract.LinkKind
    anchor         VARCHAR NOT NULL,
    alt            VARCHAR,
    image_url      VARCHAR,
    nofollow       BOOLEAN NOT NULL,
    ugc            BOOLEAN NOT NULL,
    sponsored      BOOLEAN NOT NULL,
    -- The text around the link: ZSTD, not DuckDB's choice for strings (DICT_FSST), which
    -- builds a symbol table per 64 KiB block and made these two columns the costliest part
    -- of writing a link row (docs/data-model.md, "Compression of the link texts").
    text_pre       VARCHAR NOT NULL USING COMPRESSION zstd,
    text_post      VARCHAR NOT NULL USING COMPRESSION zstd,
    location       VARCHAR,
    links_count    INTEGER NOT NULL,
    hreflang       VARCHAR,
    attr_hash      BIGINT NOT NULL,
    live           BOOLEAN NOT NULL,
    first_seen     TIMESTAMP NOT NULL,   -- first time ever seen
    last_seen      TIMESTAMP NOT NULL,   -- last fetch of the source that still had it
    lost_at        TIMESTAMP,            -- when it was last lost (NULL while live)
    lost_reason    VARCHAR,
    first_fetch_id BIGINT NOT NULL,      -- evidence: the fetch it was first seen in
    last_fetch_id  BIGINT NOT NULL,      -- evidence: the fetch it was last seen in
    source_title   VARCHAR,              -- the source page's title when last seen (schema 2)
    first_batch_id BIGINT                -- the batch it was first seen in (schema 3)
);

-- The changes of links after their first appearance: 'lost', and 'new' when a lost link is
-- seen again. A link's first 'new' is its `links` row (first_seen, first_batch_id), so a
-- first ingest writes no event rows (schema 3); `link_events` below has every change.
CREATE TABLE IF NOT EXISTS link_changes (
    day           DATE NOT NULL,
    seen_at       TIMESTAMP NOT NULL,
    link_id       BIGINT NOT NULL,
    event         VARCHAR NOT NULL,      -- new | lost
    reason        VARCHAR,               -- lost reason (seed 001), NULL for new
    target_domain VARCHAR NOT NULL,
    target_host   VARCHAR NOT NULL,
    target_key    VARCHAR NOT NULL,
    source_key    VARCHAR NOT NULL,
    source_domain VARCHAR NOT NULL,
    internal      BOOLEAN NOT NULL,
    batch_id      BIGINT NOT NULL
);

-- Every change of a link: 'new' (first seen, or seen again after being lost) and 'lost',
-- with the target columns to scope by (both parts are sorted by target, see Store.compact).
CREATE VIEW IF NOT EXISTS link_events AS
SELECT CAST(first_seen AS DATE) AS day, first_seen AS seen_at, link_id, 'new' AS event,
       CAST(NULL AS VARCHAR) AS reason, target_domain, target_host, target_key, source_key,
       source_domain, internal, first_batch_id AS batch_id
FROM links
UNION ALL
SELECT day, seen_at, link_id, event, reason, target_domain, target_host, target_key,
       source_key, source_domain, internal, batch_id
FROM link_changes;

-- Committed write batches: a batch and everything it wrote commit in one transaction.
CREATE TABLE IF NOT EXISTS batches (
    batch_id     BIGINT NOT NULL,
    job          VARCHAR NOT NULL,
    committed_at TIMESTAMP NOT NULL,
    fetches      INTEGER NOT NULL,
    new_links    INTEGER NOT NULL,
    lost_links   INTEGER NOT NULL
);

-- Progress of ingests and crawls, committed with the batch it describes (resume points).
CREATE TABLE IF NOT EXISTS manifests (
    job          VARCHAR NOT NULL,       -- e.g. 'ingest:<sha256 of file>' or 'crawl:<name>'
    kind         VARCHAR NOT NULL,       -- ingest | crawl
    path         VARCHAR NOT NULL,
    digest       VARCHAR,
    size         BIGINT,
    position     BIGINT NOT NULL,        -- byte offset (ingest) or frontier cursor (crawl)
    records_ok   BIGINT NOT NULL,
    records_bad  BIGINT NOT NULL,
    done         BOOLEAN NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    state        VARCHAR                 -- JSON for whatever else the job needs to resume
);
