-- The counters first, so that nothing counts while the tables go.
-- DROP TABLE, not DROP VIEW: ClickHouse 18.16 has no DROP VIEW.
DROP TABLE IF EXISTS shadow_arrivals_consumer;
DROP TABLE IF EXISTS active_visitors_arrivals_consumer;
DROP TABLE IF EXISTS shadow_arrivals;
DROP TABLE IF EXISTS shadow_minutes;
DROP TABLE IF EXISTS active_visitors_arrivals;
DROP TABLE IF EXISTS active_visitors_sealed;
DROP TABLE IF EXISTS active_visitors_seals;
