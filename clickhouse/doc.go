// Package clickhouse connects to ClickHouse and owns its schema: the Kafka
// engine tables that read the pipeline's topics, the ReplacingMergeTree
// stores behind them and the materialized views that move rows from one to
// the other.
//
// # Connecting
//
// Open returns a clickhouse-go v2 native connection, already pinged, from a
// Config; EnsureDatabase creates the configured database first if need be.
//
// # Schema
//
// The schema is a series of golang-migrate migrations in migrations/,
// embedded in the binary. They are Go text/templates: the broker list, topic
// names and consumer groups the Kafka engine tables use come from a
// KafkaSource at migrate time, each written as a quoted literal, so that
// configuration can never change the shape of a statement. Migrator applies
// them (Up, Down, Version, Force); Objects lists what Up creates.
//
//	shadow_stream (Kafka) ─▶ shadow_consumer (MV) ─▶ shadow (ReplacingMergeTree)
//	                      └▶ shadow_errors_consumer (MV, 21.6+) ─▶ shadow_errors
//	active_visitors_stream (Kafka) ─▶ active_visitors_consumer (MV) ─▶ active_visitors (ReplacingMergeTree)
//	                               └▶ active_visitors_errors_consumer (MV, 21.6+) ─▶ active_visitors_errors
//
// The Kafka engine delivers at least once, so the stores are keyed for a
// re-delivered event to collapse with the first; exact answers come from
// reading them with FINAL.
//
// Before Up, create the topics: a Kafka engine table whose topic does not
// exist when the table is created does not pick the topic up later (seen on
// 18.16). A consumer group new to Kafka starts at the latest offset.
//
// # ClickHouse versions
//
// Every statement here runs on ClickHouse 18.16 and on current releases. On
// 18.16 that rules out kafka_skip_broken_messages and DROP VIEW (DROP TABLE
// drops views on both), and it rules out golang-migrate's stock ClickHouse
// driver, whose database/sql INSERT … VALUES of the version hangs there:
// MigrateDriver replaces it over the native protocol.
//
// The migrations are rendered for the server they run on: a Migrator asks
// for version() before its first operation (RenderUp shows the SQL for any
// version). What differs, by release:
//
//	release          record the engine cannot parse           record that parses but breaks the contract
//	18.16 … 21.5     the engine stops on it; the worker's     kept out of the store by the view;
//	                 guard (internal/guard) dead-letters it,  the guard's audit dead-letters it
//	                 notes it in <store>_errors, moves the
//	                 group past it
//	21.6 and later   kafka_handle_error_mode = 'stream':      kept out of the store by the view;
//	                 <store>_errors_consumer keeps it, with   <store>_errors_consumer keeps it
//	                 _raw_message, _error, _topic,            (source 'view')
//	                 _partition, _offset (source 'engine')
//
// ErrorStreamSince is that boundary. It is conservative: on a release
// between the setting's introduction and it, the guard does the work.
package clickhouse
