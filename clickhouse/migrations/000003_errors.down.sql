-- Back to 000002: the views store everything, the engine tables stop on a
-- record they cannot parse, and the errors tables go.
-- A Go text/template rendered with a clickhouse.KafkaSource and .Server.
DROP TABLE IF EXISTS shadow_consumer;
DROP TABLE IF EXISTS active_visitors_consumer;
DROP TABLE IF EXISTS shadow_errors_consumer;
DROP TABLE IF EXISTS active_visitors_errors_consumer;
DROP TABLE IF EXISTS shadow_errors;
DROP TABLE IF EXISTS active_visitors_errors;
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
         kafka_num_consumers = {{.NumConsumers}};

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
         kafka_num_consumers = {{.NumConsumers}};
{{end}}
CREATE MATERIALIZED VIEW shadow_consumer TO shadow AS
SELECT type, unique_id, emit_timestamp, rating
FROM shadow_stream;

CREATE MATERIALIZED VIEW active_visitors_consumer TO active_visitors AS
SELECT
    account_id,
    store_id,
    toDateTime(`window`[1]) AS window_start,
    toDateTime(`window`[2]) AS window_end,
    `count`
FROM active_visitors_stream;
