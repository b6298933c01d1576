-- Distinct-visitor counts per (account, store, window), read from Kafka
-- (KafkaSource.ActiveVisitorsTopic).
-- A Go text/template rendered with a clickhouse.KafkaSource; every string goes
-- through quote, so configuration cannot change the statement.

-- The Kafka engine table. Messages look like
-- {"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":3}
-- and store_id may be null. `window` and `count` are backquoted: newer
-- releases treat WINDOW as a keyword, and count is a function.
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

-- The store. A window re-emitted after a restart carries the same count and
-- collapses with the first. A null store and the store '' are different keys,
-- hence isNull in the key; a Nullable column cannot be a key itself.
CREATE TABLE active_visitors
(
    account_id   Int64,
    store_id     Nullable(String),
    window_start DateTime('UTC'),
    window_end   DateTime('UTC'),
    `count`      UInt64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (account_id, ifNull(store_id, ''), isNull(store_id), window_start);

CREATE MATERIALIZED VIEW active_visitors_consumer TO active_visitors AS
SELECT
    account_id,
    store_id,
    toDateTime(`window`[1]) AS window_start,
    toDateTime(`window`[2]) AS window_end,
    `count`
FROM active_visitors_stream;
