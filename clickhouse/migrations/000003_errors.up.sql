-- Records the Kafka engine tables cannot store no longer stop ingestion.
-- A Go text/template rendered with a clickhouse.KafkaSource and the server's
-- version (.Server); every string goes through quote.
--
-- From ClickHouse 21.6 on (.Server.ErrorStream) the engine tables are made
-- again with kafka_handle_error_mode = 'stream': a record that does not parse
-- comes through with _error set, and a second view keeps it, with its
-- coordinates, in an errors table. On older servers the engine stops on such
-- a record, and the worker's guard moves it past (see internal/guard); the
-- guard writes what it skipped to the same errors table.
--
-- On every server the views store only records that keep the topics'
-- contract (agents.CheckShadow, agents.CheckActiveVisitors): a record that
-- parses but breaks it (a missing field read as its default, a type that
-- does not match the rating) is kept out of the stores.
--
-- The engine tables keep their consumer groups, whose offsets live in Kafka,
-- so re-creating them loses no offset, and the stores are not touched.

{{define "shadowValid"}}unique_id != ''
      AND length(unique_id) <= 1024
      AND emit_timestamp >= toDateTime('2000-01-01 00:00:00', 'UTC')
      AND toString(type) = multiIf(rating % 15 = 0, 'ShaDow', rating % 3 = 0, 'Sha', rating % 5 = 0, 'Dow', 'Incompatible'){{end}}
{{define "visitorsValid"}}length(`window`) = 2
      AND `window`[1] < `window`[2]
      AND `count` >= 1{{end}}

DROP TABLE IF EXISTS shadow_consumer;
DROP TABLE IF EXISTS active_visitors_consumer;

-- What the engine or the guard could not store, one row per record
-- (kafka_topic, kafka_partition, kafka_offset): a record noticed twice
-- collapses. source says who noticed it.
CREATE TABLE shadow_errors
(
    kafka_topic     String,
    kafka_partition Int64,
    kafka_offset    Int64,
    raw_message     String,
    error           String,
    source          Enum8('engine' = 1, 'view' = 2, 'guard' = 3),
    noticed_at      DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY (kafka_topic, kafka_partition, kafka_offset);

CREATE TABLE active_visitors_errors
(
    kafka_topic     String,
    kafka_partition Int64,
    kafka_offset    Int64,
    raw_message     String,
    error           String,
    source          Enum8('engine' = 1, 'view' = 2, 'guard' = 3),
    noticed_at      DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY (kafka_topic, kafka_partition, kafka_offset);
{{if .Server.ErrorStream}}
DROP TABLE IF EXISTS shadow_stream;
DROP TABLE IF EXISTS active_visitors_stream;

CREATE TABLE shadow_stream
(
    type           Enum8('Incompatible' = 0, 'Sha' = 1, 'Dow' = 2, 'ShaDow' = 3),
    unique_id      String,
    emit_timestamp DateTime('UTC'),
    rating         Int32
)
ENGINE = Kafka
SETTINGS kafka_broker_list = {{quote .Brokers}},
         kafka_topic_list = {{quote .ShadowTopic}},
         kafka_group_name = {{quote .ShadowGroup}},
         kafka_format = 'JSONEachRow',
         kafka_num_consumers = {{.NumConsumers}},
         kafka_handle_error_mode = 'stream';

CREATE TABLE active_visitors_stream
(
    account_id Int64,
    store_id   Nullable(String),
    `window`   Array(UInt32),
    `count`    UInt64
)
ENGINE = Kafka
SETTINGS kafka_broker_list = {{quote .Brokers}},
         kafka_topic_list = {{quote .ActiveVisitorsTopic}},
         kafka_group_name = {{quote .ActiveVisitorsGroup}},
         kafka_format = 'JSONEachRow',
         kafka_num_consumers = {{.NumConsumers}},
         kafka_handle_error_mode = 'stream';

CREATE MATERIALIZED VIEW shadow_errors_consumer TO shadow_errors AS
SELECT
    _topic AS kafka_topic,
    toInt64(_partition) AS kafka_partition,
    toInt64(_offset) AS kafka_offset,
    _raw_message AS raw_message,
    if(length(_error) > 0, _error, 'breaks the shadow topic''s contract') AS error,
    if(length(_error) > 0, 'engine', 'view') AS source,
    now() AS noticed_at
FROM shadow_stream
WHERE length(_error) > 0 OR NOT ({{template "shadowValid"}});

CREATE MATERIALIZED VIEW active_visitors_errors_consumer TO active_visitors_errors AS
SELECT
    _topic AS kafka_topic,
    toInt64(_partition) AS kafka_partition,
    toInt64(_offset) AS kafka_offset,
    _raw_message AS raw_message,
    if(length(_error) > 0, _error, 'breaks the active-visitors topic''s contract') AS error,
    if(length(_error) > 0, 'engine', 'view') AS source,
    now() AS noticed_at
FROM active_visitors_stream
WHERE length(_error) > 0 OR NOT ({{template "visitorsValid"}});
{{end}}
-- The stores' views, now keeping out what breaks the contract. Created last:
-- from here on the engine consumes again.
CREATE MATERIALIZED VIEW shadow_consumer TO shadow AS
SELECT type, unique_id, emit_timestamp, rating
FROM shadow_stream
WHERE {{if .Server.ErrorStream}}length(_error) = 0 AND {{end}}{{template "shadowValid"}};

CREATE MATERIALIZED VIEW active_visitors_consumer TO active_visitors AS
SELECT
    account_id,
    store_id,
    toDateTime(`window`[1]) AS window_start,
    toDateTime(`window`[2]) AS window_end,
    `count`
FROM active_visitors_stream
WHERE {{if .Server.ErrorStream}}length(_error) = 0 AND {{end}}{{template "visitorsValid"}};
