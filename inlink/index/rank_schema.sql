-- inlink rank tables (DuckDB), created by inlink.rank.store; see docs/rank.md.
-- Every rank computation is a run; scores are keyed by run_id so old runs stay readable
-- for history, and `rank_current` names the run readers use by default.

CREATE TABLE IF NOT EXISTS rank_runs (
    run_id            BIGINT NOT NULL,
    day               DATE NOT NULL,        -- settings.today() when the run was made
    started_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP NOT NULL,
    duration_s        DOUBLE NOT NULL,
    max_batch_id      BIGINT NOT NULL,      -- the index snapshot: batches <= this one
    damping           DOUBLE NOT NULL,
    tolerance         DOUBLE NOT NULL,
    params            VARCHAR NOT NULL,     -- JSON: everything else that shaped the run
    pages             BIGINT NOT NULL,
    page_edges        BIGINT NOT NULL,
    page_iterations   INTEGER NOT NULL,
    page_l1           DOUBLE NOT NULL,
    page_converged    BOOLEAN NOT NULL,
    page_floor        DOUBLE NOT NULL,      -- score of a page nobody links to (rank 0)
    page_top          DOUBLE NOT NULL,      -- highest page score (rank 100)
    domains           BIGINT NOT NULL,
    domain_edges      BIGINT NOT NULL,
    domain_iterations INTEGER NOT NULL,
    domain_l1         DOUBLE NOT NULL,
    domain_converged  BOOLEAN NOT NULL,
    domain_floor      DOUBLE NOT NULL,
    domain_top        DOUBLE NOT NULL
);

-- One row (name = 'current'): switched in the transaction that wrote the run.
CREATE TABLE IF NOT EXISTS rank_current (
    name   VARCHAR NOT NULL,
    run_id BIGINT NOT NULL
);

-- Per page and run. link_rank*: what one dofollow link from this page passes, on the
-- same scale (the rank a page would have with that link as its only in-link).
CREATE TABLE IF NOT EXISTS rank_pages (
    run_id         BIGINT NOT NULL,
    url_key        VARCHAR NOT NULL,
    domain         VARCHAR NOT NULL,
    score          DOUBLE NOT NULL,
    inlink_rank    SMALLINT NOT NULL,       -- 0-100
    rank_1000      SMALLINT NOT NULL,       -- 0-1000 (DataForSEO dialect)
    link_rank      SMALLINT NOT NULL,
    link_rank_1000 SMALLINT NOT NULL,
    in_links       INTEGER NOT NULL,        -- distinct pages passing rank to it
    out_links      INTEGER NOT NULL         -- distinct pages it passes rank to
);

CREATE TABLE IF NOT EXISTS rank_domains (
    run_id         BIGINT NOT NULL,
    domain         VARCHAR NOT NULL,
    score          DOUBLE NOT NULL,
    inlink_rank    SMALLINT NOT NULL,
    rank_1000      SMALLINT NOT NULL,
    in_domains     INTEGER NOT NULL,        -- distinct domains passing rank to it
    out_domains    INTEGER NOT NULL,
    out_weight     DOUBLE NOT NULL          -- sum of its edge weights (linking pages)
);

-- Spam score per run for domains (kind = 'domain') and pages (kind = 'page'); the raw
-- signal values are kept so each contribution can be explained later.
CREATE TABLE IF NOT EXISTS rank_spam (
    run_id          BIGINT NOT NULL,
    kind            VARCHAR NOT NULL,
    target          VARCHAR NOT NULL,
    score           SMALLINT NOT NULL,
    outbound_links  DOUBLE NOT NULL,
    referrer_subnet DOUBLE NOT NULL,
    referrers       INTEGER NOT NULL,
    anchor_commercial DOUBLE NOT NULL,
    thin_pages      DOUBLE NOT NULL,
    risky_tld       DOUBLE NOT NULL,
    out_degree      DOUBLE NOT NULL,
    sitewide_footer DOUBLE NOT NULL,
    reciprocal      DOUBLE NOT NULL
);
