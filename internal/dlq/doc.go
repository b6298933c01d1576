// Package dlq reads a dead-letter topic and sends its records back to the
// topics they came from, once the cause of their refusal is fixed. It backs
// `domination dlq list|show|replay`.
//
// # What a dead letter holds
//
// An agent that refuses an input (see agents/deadletter.go) writes to its
// dead-letter topic the input's key, value and headers unchanged, stamped
// with the input's Kafka timestamp, plus the headers dlq.reason, dlq.detail,
// dlq.agent, dlq.topic, dlq.partition, dlq.offset and dlq.timestamp (the
// input's timestamp in unix milliseconds), and dlq.truncated when the value
// was cut to the dead-letter size limit. Record is that, decoded. A header
// that appears twice (a replayed input refused again) counts by its last
// value, the most recent refusal.
//
// # Reading
//
// Scan reads every partition of the dead-letter topic from its first offset
// to its end as it is when Scan starts, so it ends even while agents keep
// writing, and passes each record that a Selection matches to a callback.
// A Selection filters on reason, on the input's time (dlq.timestamp, else
// the record's Kafka timestamp) and on partition/offset ranges of the
// dead-letter topic. Get reads one record by partition and offset.
//
// # Replaying
//
// Replay sends the selected records to the topic named in their dlq.topic
// header, on the partition named in dlq.partition when the topic still has
// it (else by the key's murmur2 hash, as the producers do), with:
//
//   - the original key and value;
//   - the original headers: every header except the dlq.* ones the
//     dead-lettering added, which describe the refusal, not the record;
//   - one added header, dlq.replayed-from, naming the dead letter as
//     "<dead-letter topic>/<partition>/<offset>";
//   - the original Kafka timestamp (dlq.timestamp, else the dead letter's
//     own timestamp, which the agents set to the input's).
//
// Before sending anything Replay checks the whole selection: a record
// without dlq.topic, one whose dlq.topic is not a valid topic name or is the
// dead-letter topic itself, or a destination topic that does not exist is
// an error, and nothing is sent. Records cut to the dead-letter size limit
// (dlq.truncated) cannot be sent as they were and are skipped, and counted
// as such. Records are written in batches with RequireAll; the Summary says
// how many were sent and acknowledged, also when a batch fails and Replay
// stops there. A dry run does every check and reports what would be sent,
// and sends nothing.
//
// # Why replaying twice does not count twice
//
// Replay keeps no state and does not need to: the downstream stores make a
// repeated input harmless. The shadow agent's output is a pure function of
// the rating record, its emit_timestamp being the record's Kafka timestamp;
// the shadow table is a ReplacingMergeTree keyed on (emit_timestamp,
// unique_id) and read with FINAL. Because a replayed rating carries the
// original's bytes and timestamp, every copy of it, from a first replay, a
// second one, or a replayed record refused and replayed again, produces the
// same row, and ClickHouse counts it once. A replayed visit joins the window
// of its own timestamp, whose count is of distinct visit ids, so a second
// copy does not change it; a visit for a window already closed is
// dead-lettered again as late. What replaying twice does change is the
// input topic, which holds one more copy per replay; dlq.replayed-from tells
// them apart.
package dlq
