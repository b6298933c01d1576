-- The view first, so that nothing consumes while the tables go.
-- DROP TABLE, not DROP VIEW: ClickHouse 18.16 has no DROP VIEW.
DROP TABLE IF EXISTS active_visitors_consumer;
DROP TABLE IF EXISTS active_visitors_stream;
DROP TABLE IF EXISTS active_visitors;
