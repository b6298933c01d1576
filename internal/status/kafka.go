package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/broker"

	"github.com/domination/domination/wire"
)

// errNoTopic marks a topic that does not exist.
var errNoTopic = errors.New("topic does not exist")

// topicBounds returns the partitions of topic with their offsets, in
// partition order, or errNoTopic.
func topicBounds(ctx context.Context, c *kafka.Client, topic string) ([]broker.Span, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	if len(md.Topics) != 1 {
		return nil, fmt.Errorf("describe topic %s: %d topics in the answer", topic, len(md.Topics))
	}
	t := md.Topics[0]
	if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
		return nil, errNoTopic
	}
	if t.Error != nil {
		return nil, fmt.Errorf("describe topic %s: %w", topic, t.Error)
	}
	ids := make([]int, len(t.Partitions))
	for i, p := range t.Partitions {
		ids[i] = p.ID
	}
	return broker.Spans(ctx, c, topic, ids)
}

// committedOffsets returns group's committed offset per partition of topic,
// -1 where it has none.
func committedOffsets(ctx context.Context, c *kafka.Client, group, topic string, parts []broker.Span) (map[int]int64, error) {
	ids := make([]int, len(parts))
	for i, p := range parts {
		ids[i] = p.Partition
	}
	res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	if res.Error != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, res.Error)
	}
	out := make(map[int]int64, len(ids))
	for _, id := range ids {
		out[id] = -1
	}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("fetch offsets of group %s on %s/%d: %w", group, topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// lagOf is what waits for a group on a partition.
func lagOf(b broker.Span, committed int64) int64 {
	from := committed
	if from < 0 || from < b.First {
		from = b.First
	}
	return max(b.End-from, 0)
}

// tailRecords is how many records at the end of each partition are read
// for the newest event time: the last one may be a record that does not
// decode (the poison a stall is about), and then one before it serves.
const tailRecords = 16

// fetchMaxBytes bounds one fetch; a larger record batch still comes whole.
const fetchMaxBytes = 4 << 20

// newestEventTime returns the newest event time that decode finds in the
// last records of the partitions, and false when none decodes.
func newestEventTime(ctx context.Context, c *kafka.Client, topic string, parts []broker.Span, decode func([]byte) (time.Time, bool)) (time.Time, bool, error) {
	var newest time.Time
	found := false
	for _, b := range parts {
		if b.End <= b.First {
			continue
		}
		from := max(b.First, b.End-tailRecords)
		err := readRange(ctx, c, topic, b.Partition, from, b.End, func(r *kafka.Message) {
			if t, ok := decode(r.Value); ok && (!found || t.After(newest)) {
				newest, found = t, true
			}
		})
		if err != nil {
			return time.Time{}, false, err
		}
	}
	return newest, found, nil
}

// readRange passes the records of topic/partition in [from, to) to fn, in
// offset order. It stops early, without error, when the partition has
// fewer records than asked (deleted by retention meanwhile).
func readRange(ctx context.Context, c *kafka.Client, topic string, partition int, from, to int64, fn func(*kafka.Message)) error {
	for from < to {
		res, err := c.Fetch(ctx, &kafka.FetchRequest{
			Topic: topic, Partition: partition, Offset: from,
			MinBytes: 1, MaxBytes: fetchMaxBytes, MaxWait: 100 * time.Millisecond,
		})
		if err != nil {
			return fmt.Errorf("read %s/%d at %d: %w", topic, partition, from, err)
		}
		if errors.Is(res.Error, kafka.OffsetOutOfRange) {
			return nil
		}
		if res.Error != nil {
			return fmt.Errorf("read %s/%d at %d: %w", topic, partition, from, res.Error)
		}
		next := from
		for {
			r, err := res.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("read %s/%d at %d: %w", topic, partition, next, err)
			}
			if r.Offset < from || r.Offset >= to {
				continue
			}
			m := kafka.Message{Topic: topic, Partition: partition, Offset: r.Offset, Time: r.Time}
			if r.Value != nil {
				m.Value, err = io.ReadAll(r.Value)
				if err != nil {
					return fmt.Errorf("read %s/%d at %d: %w", topic, partition, r.Offset, err)
				}
			}
			m.Headers = r.Headers
			fn(&m)
			next = r.Offset + 1
		}
		if next == from {
			// Nothing at or after from came back: a gap (compaction, an
			// aborted transaction's marker) or the end moved back.
			if res.HighWatermark <= from {
				return nil
			}
			next = from + 1
		}
		from = next
	}
	return nil
}

// shadowEventTime is the emit_timestamp of a shadow event; a record that
// breaks the topic's contract has none (the store keeps it out too).
func shadowEventTime(value []byte) (time.Time, bool) {
	v, err := wire.DecodeShadow(value)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(v.EmitTimestamp, 0).UTC(), true
}

// windowEndTime is the window end of an active-visitors count; a record
// that breaks the topic's contract has none.
func windowEndTime(value []byte) (time.Time, bool) {
	v, err := wire.DecodeActiveVisitors(value)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(v.End, 0).UTC(), true
}

// deadLetterCursor counts one dead-letter topic's records by reason,
// remembering per partition the offset it has read up to, so that each
// refresh reads only what is new.
type deadLetterCursor struct {
	next   map[int]int64
	byPart map[int]map[string]int64
	exists bool
}

func newDeadLetterCursor() *deadLetterCursor {
	return &deadLetterCursor{next: map[int]int64{}, byPart: map[int]map[string]int64{}}
}

// reasonOf returns the last dlq.reason header of a dead letter (a record
// refused again after a replay carries the newest refusal last).
func reasonOf(headers []kafka.Header) string {
	reason := ""
	for _, h := range headers {
		if h.Key == wire.HeaderReason {
			reason = string(h.Value)
		}
	}
	if reason == "" {
		return "unknown"
	}
	return reason
}

// advance reads the records of topic added since the last call.
func (d *deadLetterCursor) advance(ctx context.Context, c *kafka.Client, topic string) error {
	parts, err := topicBounds(ctx, c, topic)
	if errors.Is(err, errNoTopic) {
		d.exists = false
		clear(d.next)
		clear(d.byPart)
		return nil
	}
	if err != nil {
		return err
	}
	d.exists = true
	seen := map[int]bool{}
	for _, b := range parts {
		seen[b.Partition] = true
		next, ok := d.next[b.Partition]
		if !ok || next > b.End {
			// New partition, or the topic was created again: start over.
			next = b.First
			d.byPart[b.Partition] = map[string]int64{}
		}
		next = max(next, b.First)
		counts := d.byPart[b.Partition]
		if err := readRange(ctx, c, topic, b.Partition, next, b.End, func(m *kafka.Message) {
			counts[reasonOf(m.Headers)]++
			next = m.Offset + 1
		}); err != nil {
			return err
		}
		d.next[b.Partition] = max(next, b.End)
	}
	for p := range d.next {
		if !seen[p] {
			delete(d.next, p)
			delete(d.byPart, p)
		}
	}
	return nil
}

// counts returns the totals so far.
func (d *deadLetterCursor) counts(topic string) DeadLetters {
	out := DeadLetters{Topic: topic, Exists: d.exists, ByReason: map[string]int64{}}
	for _, m := range d.byPart {
		for r, n := range m {
			out.ByReason[r] += n
			out.Total += n
		}
	}
	return out
}
