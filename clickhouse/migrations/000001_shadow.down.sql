-- The view first, so that nothing consumes while the tables go.
-- DROP TABLE, not DROP VIEW: ClickHouse 18.16 has no DROP VIEW.
DROP TABLE IF EXISTS shadow_consumer;
DROP TABLE IF EXISTS shadow_stream;
DROP TABLE IF EXISTS shadow;
