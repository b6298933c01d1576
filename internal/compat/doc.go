// Package compat checks the product's SQL against a current ClickHouse
// engine without a server: the one embedded in chdb-core (PyPI), driven
// through scripts/chdb/run.py by an Engine. `make test` installs it
// (scripts/chdb/install.sh, into .tools/chdb); a missing Python or chdb-core
// fails the test, naming the fix, and never skips it.
//
// # What is verified where
//
// ClickHouse 18.16 (Debian's package, a real server in `make test`): every
// statement, as rendered for 18.16, by the tests of clickhouse, query,
// feed, verify and e2e, with real ingestion through the Kafka engine.
//
// Current ClickHouse (chdb-core 26.9, in process), by
// TestCurrentEngineRunsEveryShippedStatement:
//
//   - Migrations: every statement of every up migration, rendered for the
//     engine's own release (clickhouse.RenderUp), in order. The stores,
//     errors tables and views must succeed. A Kafka engine CREATE must fail
//     with exactly KafkaStartFailure: the engine validates its settings
//     first (an unknown setting, or a bad kafka_handle_error_mode, fails
//     with its own error, and so fails the test), attaches the table, and
//     only then fails to start its consumers in process. The table stays
//     attached, so the views over it, virtual columns such as _error,
//     _raw_message, _topic, _partition and _offset included, are analysed
//     against the real engine's table.
//   - Views: StandIn then replaces each Kafka engine table with a Null
//     table of the same columns plus those virtual columns, under the same
//     name; the views stay attached to it. Records inserted as JSONEachRow,
//     as the topics carry them, go through the views' SELECTs into the
//     stores, with one duplicate per store; records with _error set, or
//     that break a topic's contract, must land in the errors tables
//     instead (where the migrations create the errors views).
//   - Statements the product sends at run time: every source in the test's
//     table (query shadow and active-visitors in each grouping and filter
//     shape, the feed's history, verify's reads, the migration driver's
//     version table and the server version check) runs its real code path on
//     a clickhouse-go connection to a Recorder, which keeps each statement
//     with its arguments bound by clickhouse-go itself, for a server in UTC
//     and in another zone (the two ways a time.Time is written). Each is
//     replayed on the engine over those records and must succeed; the
//     results are compared with what the fixture implies, FINAL collapsing
//     the duplicates.
//   - Down and up again: clickhouse.Migrator runs Down, then Up, on a
//     Recorder, and what it sent (the down migrations, the version table's
//     statements, the up migrations once more) is replayed with the same
//     rules; the database must then hold nothing, then every object again.
//
// Not verified on a current engine: a Kafka engine table actually
// consuming (no broker in process); how clickhouse-go scans a current
// server's answers (the Recorder answers with no rows, or a canned one);
// the data of batch INSERTs (the version table's rows: only counted); and
// ON CLUSTER statements (chdb has no cluster).
package compat
