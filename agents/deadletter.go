package agents

import (
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"
)

// Dead-letter headers. A dead-letter record carries the input's key, value
// and headers unchanged, plus these.
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

// DefaultMaxDeadLetterBytes caps the value kept in a dead-letter record, so
// an oversized input can still be dead-lettered under the broker's size
// limit. Longer values are cut and flagged with HeaderTruncated.
const DefaultMaxDeadLetterBytes = 64 << 10

// deadLetter builds the dead-letter record for input m.
func deadLetter(topic, agent string, m *kafka.Message, reason Reason, detail string, maxValue int) kafka.Message {
	value := m.Value
	headers := make([]kafka.Header, 0, len(m.Headers)+8)
	headers = append(headers, m.Headers...)
	if maxValue > 0 && len(value) > maxValue {
		headers = append(headers, kafka.Header{Key: HeaderTruncated, Value: []byte(strconv.Itoa(len(value)))})
		value = value[:maxValue]
	}
	headers = append(headers,
		kafka.Header{Key: HeaderReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderDetail, Value: []byte(detail)},
		kafka.Header{Key: HeaderAgent, Value: []byte(agent)},
		kafka.Header{Key: HeaderTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		kafka.Header{Key: HeaderTimestamp, Value: []byte(strconv.FormatInt(m.Time.UnixMilli(), 10))},
	)
	return kafka.Message{Topic: topic, Key: m.Key, Value: value, Headers: headers, Time: m.Time}
}

// refusedDeadLetter builds the dead-letter record for an output m that Kafka
// refused for good. It carries the input that caused m (original bytes,
// headers and coordinates) when there is one, else m itself with partition
// and offset -1. The detail names the topic that refused the output.
//
// A refused record that was itself a dead letter is sent again cut to
// 1 KiB, so a refusal cannot loop.
func refusedDeadLetter(dlq, agent string, m kafka.Message, in *kafka.Message, reason Reason, cause error, maxValue int) kafka.Message {
	if m.Topic == dlq {
		maxValue = 1 << 10
	}
	if in == nil {
		in = &kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Time: m.Time, Partition: -1, Offset: -1}
	}
	return deadLetter(dlq, agent, in, reason, fmt.Sprintf("output to %s refused: %v", m.Topic, cause), maxValue)
}

// HeaderValue returns the value of the last header named key, or "".
func HeaderValue(headers []kafka.Header, key string) string {
	for i := len(headers) - 1; i >= 0; i-- {
		if headers[i].Key == key {
			return string(headers[i].Value)
		}
	}
	return ""
}
