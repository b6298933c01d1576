// Package status sees the whole path, from each input topic to each
// ClickHouse table: for every stage, the topic's end offsets, the consumer
// group's committed offsets and lag per partition, whether the stage is
// stalled (since when, at which partition and offset); for the Kafka engine
// tables also the store's rows, its freshness and its errors table; and the
// dead-letter topics' records by reason. It backs `domination status`, the
// worker's GET /status and the domination_clickhouse_* metrics.
//
// # Stages
//
// In pipeline order, named as in the metric domination_stage_stalled:
//
//	agent:shadow                ratings topic, the shadow agent's group
//	clickhouse:shadow           shadow topic, the shadow_stream engine's group, store shadow
//	agent:visits                visits topic, the visits agent's group
//	agent:windows               repartition topic, the windows group (visits group + "-windows")
//	clickhouse:active_visitors  active-visitors topic, the active_visitors_stream engine's group, store active_visitors
//
// The agent stages' names come from the agents' configs. An engine stage
// reads its topic and group from the engine table's own definition
// (system.tables.engine_full), which is what ClickHouse consumes, and falls
// back to Config.Engines before the table exists.
//
// # Stalled
//
// A partition is stalled when records wait (lag > 0) and its committed
// offset has not moved for the stage's stall time: Config.StallAfter, plus
// the window and the grace for the windows stage, which keeps the records
// of open windows uncommitted on purpose. The clock starts at the later of
// the offset's last move and the moment records began to wait, so a
// partition idle for an hour is not stalled when one record arrives. A stage
// is stalled when any partition is; the report names the one that has waited
// longest.
//
// Seeing "not moved for StallAfter" takes history: the first Collect of a
// Collector never reports a stall. Run collects every Interval, so a
// worker's report and metrics have it. `domination status` either reads a
// worker's report (--worker) or watches for itself: it collects again every
// second until no partition with records waiting has kept its offset since
// the first look, or until the stall time has passed; a drained or moving
// pipeline answers at once, a stalled one after the stall time.
//
// # Freshness
//
// For an engine stage, the newest event time on the topic (the largest
// emit_timestamp, or window end, among the last records of each partition;
// records that do not decode are passed over) minus the newest in the store
// (emit_timestamp from the parts' metadata; max(window_end) over the newest
// day of window starts, exact for windows up to a day), at least 0. With an
// empty store it is the age of the topic's newest record.
//
// # Cost
//
// A refresh sends, per stage, one metadata, one list-offsets and one
// offset-fetch request and reads at most 16 records per engine partition;
// to ClickHouse, one system.tables and, per store, one system.parts query,
// a bounded max() (active_visitors only) and a count of the errors table.
// Dead-letter topics are read incrementally: each Collect reads only the
// records added since the previous one.
//
// # Concurrency
//
// Collect may be called from several goroutines; calls are serialised, as
// the stall marks and dead-letter cursors are carried from one snapshot to
// the next. Run publishes each report under a second lock, so Latest and
// the HTTP handler never wait for a Collect.
package status
