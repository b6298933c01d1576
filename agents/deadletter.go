package agents

import (
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
	headers := make([]kafka.Header, 0, len(m.Headers)+7)
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
	)
	return kafka.Message{Topic: topic, Key: m.Key, Value: value, Headers: headers, Time: m.Time}
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
