-- Exact answers without reading history with FINAL (see internal/rollup for
-- the argument). Each store gets:
--   - an arrival counter: a view on the store itself adds, per minute of
--     event time, how many rows were inserted. It only grows; a row
--     re-delivered, arriving late or copied again by the guard adds one.
--   - seals, written by the workers (internal/rollup): for a minute, the
--     exact answer as FINAL gave it, and the arrival count read before
--     FINAL was. A minute whose arrival count still equals its seal's is
--     answered from the seal; any other minute from the store, with FINAL.
-- A Go text/template like the others; it uses no template data.

CREATE TABLE shadow_arrivals
(
    minute  DateTime('UTC'),
    arrived UInt64
)
ENGINE = SummingMergeTree()
ORDER BY minute;

-- One row per minute and type (every type, zeros included), all rows of
-- one seal written in one block with the same version.
CREATE TABLE shadow_minutes
(
    minute  DateTime('UTC'),
    type    Enum8('Incompatible' = 0, 'Sha' = 1, 'Dow' = 2, 'ShaDow' = 3),
    events  UInt64,
    arrived UInt64,
    sealed  UInt64
)
ENGINE = ReplacingMergeTree(sealed)
ORDER BY (minute, type);

CREATE TABLE active_visitors_arrivals
(
    minute  DateTime('UTC'),
    arrived UInt64
)
ENGINE = SummingMergeTree()
ORDER BY minute;

-- A seal of active_visitors: the minute's windows (by window_start), copied
-- from active_visitors FINAL under the seal's version, then the seal row.
-- Readers take the rows of the version the seal row names, so a copy still
-- being written is never read.
CREATE TABLE active_visitors_sealed
(
    sealed       UInt64,
    account_id   Int64,
    store_id     Nullable(String),
    window_start DateTime('UTC'),
    window_end   DateTime('UTC'),
    `count`      UInt64
)
ENGINE = MergeTree()
ORDER BY (window_start, sealed, account_id);

CREATE TABLE active_visitors_seals
(
    minute  DateTime('UTC'),
    arrived UInt64,
    sealed  UInt64
)
ENGINE = ReplacingMergeTree(sealed)
ORDER BY minute;

-- The counters, last: from here on every insert into a store is counted.
-- Rows stored before are found by the workers' first pass, which seals
-- every minute the store holds without a seal.
CREATE MATERIALIZED VIEW shadow_arrivals_consumer TO shadow_arrivals AS
SELECT toStartOfMinute(emit_timestamp) AS minute, count() AS arrived
FROM shadow
GROUP BY minute;

CREATE MATERIALIZED VIEW active_visitors_arrivals_consumer TO active_visitors_arrivals AS
SELECT toStartOfMinute(window_start) AS minute, count() AS arrived
FROM active_visitors
GROUP BY minute;
