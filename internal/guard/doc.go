// Package guard keeps ClickHouse's Kafka engine tables moving past records
// they cannot store, without ever skipping a valid one.
//
// On ClickHouse releases before 21.6 (clickhouse.ErrorStreamSince) the Kafka
// engine stops on a record it cannot parse and retries it for ever: anyone
// who can write to the shadow or active-visitors topic can stop ingestion
// of everything after it. Newer releases route such records to the errors
// tables themselves (migration 000003), and the guard stays idle there unless
// Config.Mode is ModeOn.
//
// # What it does
//
//   - Audit. Every worker reads the output topics in a consumer group of the
//     guard's own (Config.AuditGroup) and checks each record against its
//     topic's contract (wire.CheckShadow, wire.CheckActiveVisitors: the
//     rules of the code that writes those topics). A record that breaks it
//     is copied, with the reason and its coordinates, to the table's
//     dead-letter topic. The audit commits a record's offset only after its
//     dead letter is acknowledged, as the agents do.
//   - Unstick. One worker at a time, the leader, watches each engine
//     group's committed offsets against the topic's end. When a partition
//     has records waiting and its offset has not moved for SkipAfter, the
//     leader reads forward from the committed offset for the first record
//     that breaks the contract:
//   - none: the engine is stalled on valid data (ClickHouse down, the store
//     detached or refusing inserts, a full disk). The guard says so and
//     never skips: the stall is reported until the cause is gone.
//   - one, at offset b: the guard records it in the table's errors table
//     (source 'guard'), makes sure it is in the dead-letter topic, produces
//     again any valid records between the committed offset and b (so that
//     none is skipped; the stores collapse the copies), and moves the
//     engine's group to b+1 while the engine is out of the group: DETACH
//     the view, DETACH the engine table, wait until the group has no
//     member, commit b+1 for that partition only (a standalone commit), then
//     ATTACH the engine table and the view. This is the sequence measured to
//     work on 18.16; a commit while the engine's consumer is in the group is
//     refused.
//
// # Leadership
//
// The leader is elected through Kafka: every worker joins the consumer group
// Config.LeaderGroup on the one-partition topic Config.LeaderTopic, and the
// member assigned that partition leads for as long as its generation lasts.
// Before it detaches anything the leader commits, as that partition's offset
// metadata, the tables it is about to detach, and clears it after they are
// attached again; a new leader that finds the metadata set attaches those
// tables first. So a leader that dies half way never leaves ingestion
// detached, and a table an operator detached on purpose is left alone.
//
// # Ownership
//
// Guard.Run owns every goroutine it starts: one stream.Runner per audited
// table and the leadership loop; the unsticking runs inside the leader's
// generation, one table at a time.
package guard
