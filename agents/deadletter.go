package agents

import (
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/wire"
)

// DefaultMaxDeadLetterBytes caps the value kept in a dead-letter record, so
// an oversized input can still be dead-lettered under the broker's size
// limit. Longer values are cut and flagged with wire.HeaderTruncated.
const DefaultMaxDeadLetterBytes = 64 << 10

// DeadLetter builds the dead-letter record for m, as the agents do: m's key,
// value and headers, plus the dlq.* headers (wire.HeaderReason and the
// others) naming reason, detail, agent and m's coordinates.
func DeadLetter(topic, agent string, m *kafka.Message, reason wire.Reason, detail string) kafka.Message {
	return deadLetter(topic, agent, m, reason, detail, DefaultMaxDeadLetterBytes)
}

// deadLetter builds the dead-letter record for input m, its value cut to
// maxValue bytes.
func deadLetter(topic, agent string, m *kafka.Message, reason wire.Reason, detail string, maxValue int) kafka.Message {
	value := m.Value
	headers := make([]kafka.Header, 0, len(m.Headers)+8)
	headers = append(headers, m.Headers...)
	if maxValue > 0 && len(value) > maxValue {
		headers = append(headers, kafka.Header{Key: wire.HeaderTruncated, Value: []byte(strconv.Itoa(len(value)))})
		value = value[:maxValue]
	}
	headers = append(headers,
		kafka.Header{Key: wire.HeaderReason, Value: []byte(reason)},
		kafka.Header{Key: wire.HeaderDetail, Value: []byte(detail)},
		kafka.Header{Key: wire.HeaderAgent, Value: []byte(agent)},
		kafka.Header{Key: wire.HeaderTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: wire.HeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: wire.HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		kafka.Header{Key: wire.HeaderTimestamp, Value: []byte(strconv.FormatInt(m.Time.UnixMilli(), 10))},
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
func refusedDeadLetter(dlq, agent string, m kafka.Message, in *kafka.Message, reason wire.Reason, cause error, maxValue int) kafka.Message {
	if m.Topic == dlq {
		maxValue = 1 << 10
	}
	if in == nil {
		in = &kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Time: m.Time, Partition: -1, Offset: -1}
	}
	return deadLetter(dlq, agent, in, reason, fmt.Sprintf("output to %s refused: %v", m.Topic, cause), maxValue)
}
