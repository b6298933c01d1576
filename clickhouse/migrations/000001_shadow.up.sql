-- Ratings classified by the shadow agent, read from Kafka (KafkaSource.ShadowTopic).
-- A Go text/template rendered with a clickhouse.KafkaSource; every string goes
-- through quote, so configuration cannot change the statement.

-- The Kafka engine table: a cursor on the topic, not storage.
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

-- The store. The Kafka engine delivers at least once, so a re-delivered event
-- (same unique_id and emit_timestamp) must collapse: read it with FINAL.
CREATE TABLE shadow
(
    type           Enum8('Incompatible' = 0, 'Sha' = 1, 'Dow' = 2, 'ShaDow' = 3),
    unique_id      String,
    emit_timestamp DateTime('UTC'),
    rating         Int32
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(emit_timestamp)
ORDER BY (emit_timestamp, unique_id);

-- Moves what shadow_stream reads into shadow. Created last: from now on the
-- engine consumes.
CREATE MATERIALIZED VIEW shadow_consumer TO shadow AS
SELECT type, unique_id, emit_timestamp, rating
FROM shadow_stream;
