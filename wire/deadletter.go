package wire

import "github.com/segmentio/kafka-go"

// Dead-letter headers. A dead-letter record, on any of the dead-letter
// topics, carries the input's key, value and headers unchanged, plus these.
const (
	HeaderReason    = "dlq.reason"    // a Reason, e.g. "out_of_range"
	HeaderDetail    = "dlq.detail"    // human-readable, e.g. "rating 101 outside 1..100"
	HeaderAgent     = "dlq.agent"     // the agent that refused it
	HeaderTopic     = "dlq.topic"     // where the input came from
	HeaderPartition = "dlq.partition" // decimal
	HeaderOffset    = "dlq.offset"    // decimal
	// HeaderTimestamp is the input's Kafka timestamp in unix milliseconds,
	// decimal. The dead-letter record is stamped with the same time, but a
	// topic with message.timestamp.type=LogAppendTime, or a copy by a
	// mirroring tool, replaces that; the header keeps it, so a replay can
	// send the input with its own time, and the shadow event it causes is
	// the same row (emit_timestamp is the rating record's timestamp).
	HeaderTimestamp = "dlq.timestamp"
	// HeaderTruncated is set, to the input's length in bytes, when the
	// value was cut to the dead-letter size limit.
	HeaderTruncated = "dlq.truncated"
)

// HeaderValue returns the value of the last header named key, or "".
func HeaderValue(headers []kafka.Header, key string) string {
	for i := len(headers) - 1; i >= 0; i-- {
		if headers[i].Key == key {
			return string(headers[i].Value)
		}
	}
	return ""
}
