package dlq

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/wire"
)

// HeaderReplayedFrom marks a replayed record: its value names the dead
// letter it was sent from, "<dead-letter topic>/<partition>/<offset>".
const HeaderReplayedFrom = "dlq.replayed-from"

// headerPrefix starts every header the dead-lettering adds.
const headerPrefix = "dlq."

// Record is one dead letter, decoded.
type Record struct {
	// Topic, Partition and Offset locate the record in the dead-letter
	// topic.
	Topic     string
	Partition int
	Offset    int64
	// Time is the refused input's Kafka timestamp: the dlq.timestamp
	// header, else the dead letter's own timestamp.
	Time time.Time
	// Key, Value and Headers are the dead letter's, as stored: the input's
	// key, value (possibly truncated) and headers followed by the dlq.*
	// ones.
	Key     []byte
	Value   []byte
	Headers []kafka.Header
	// Reason, Detail and Agent are dlq.reason, dlq.detail and dlq.agent.
	Reason, Detail, Agent string
	// Origin is dlq.topic, the topic the input was read from (or the output
	// topic that refused it), "" when the header is missing.
	Origin string
	// OriginPartition and OriginOffset are dlq.partition and dlq.offset,
	// -1 when missing or when the refused record was an output with no
	// input behind it.
	OriginPartition int
	OriginOffset    int64
	// Truncated is dlq.truncated, the input's length in bytes when its
	// value was cut to the dead-letter size limit, else 0.
	Truncated int
}

// FromMessage decodes the dead letter m.
func FromMessage(m kafka.Message) Record {
	h := func(key string) string { return wire.HeaderValue(m.Headers, key) }
	r := Record{
		Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Time: m.Time, Key: m.Key, Value: m.Value, Headers: m.Headers,
		Reason: h(wire.HeaderReason), Detail: h(wire.HeaderDetail), Agent: h(wire.HeaderAgent),
		Origin: h(wire.HeaderTopic), OriginPartition: -1, OriginOffset: -1,
	}
	if ms, err := strconv.ParseInt(h(wire.HeaderTimestamp), 10, 64); err == nil {
		r.Time = time.UnixMilli(ms)
	}
	if p, err := strconv.Atoi(h(wire.HeaderPartition)); err == nil {
		r.OriginPartition = p
	}
	if o, err := strconv.ParseInt(h(wire.HeaderOffset), 10, 64); err == nil {
		r.OriginOffset = o
	}
	if n, err := strconv.Atoi(h(wire.HeaderTruncated)); err == nil && n > 0 {
		r.Truncated = n
	}
	return r
}

// ID names the record as "<topic>/<partition>/<offset>".
func (r Record) ID() string { return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset) }

// OriginID names where the input came from, "<topic>/<partition>/<offset>",
// with "?" for what the headers do not say.
func (r Record) OriginID() string {
	topic, part, off := r.Origin, "?", "?"
	if topic == "" {
		topic = "?"
	}
	if r.OriginPartition >= 0 {
		part = strconv.Itoa(r.OriginPartition)
	}
	if r.OriginOffset >= 0 {
		off = strconv.FormatInt(r.OriginOffset, 10)
	}
	return topic + "/" + part + "/" + off
}

// OriginalHeaders returns the input's own headers: the record's headers
// without the dlq.* ones.
func (r Record) OriginalHeaders() []kafka.Header {
	var out []kafka.Header
	for _, h := range r.Headers {
		if !strings.HasPrefix(h.Key, headerPrefix) {
			out = append(out, h)
		}
	}
	return out
}

// Replay returns the record to send back: to Origin, on OriginPartition
// (a hint the writer's balancer follows when the topic has it), with the
// original key, value, headers and timestamp, and HeaderReplayedFrom.
func (r Record) Replay() kafka.Message {
	headers := append(r.OriginalHeaders(), kafka.Header{Key: HeaderReplayedFrom, Value: []byte(r.ID())})
	return kafka.Message{Topic: r.Origin, Partition: r.OriginPartition, Key: r.Key, Value: r.Value, Headers: headers, Time: r.Time}
}

// Range is an inclusive range of offsets in one partition of the
// dead-letter topic. To < 0 means no upper bound.
type Range struct {
	Partition int
	From, To  int64
}

// ParseRange reads "P/O" (one record), "P/FROM-TO" (inclusive) or
// "P/FROM-" (from FROM on).
func ParseRange(s string) (Range, error) {
	bad := func(why string) (Range, error) {
		return Range{}, fmt.Errorf("offset range %q: %s; want PARTITION/OFFSET, PARTITION/FROM-TO or PARTITION/FROM-", s, why)
	}
	ps, os, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return bad("no '/'")
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 0 {
		return bad("the partition is not a number >= 0")
	}
	from, to, isRange := strings.Cut(os, "-")
	r := Range{Partition: p}
	if r.From, err = strconv.ParseInt(from, 10, 64); err != nil || r.From < 0 {
		return bad("the offset is not a number >= 0")
	}
	switch {
	case !isRange:
		r.To = r.From
	case to == "":
		r.To = -1
	default:
		if r.To, err = strconv.ParseInt(to, 10, 64); err != nil || r.To < r.From {
			return bad("the end is not a number >= the start")
		}
	}
	return r, nil
}

// String is the range in ParseRange's form.
func (r Range) String() string {
	switch {
	case r.To < 0:
		return fmt.Sprintf("%d/%d-", r.Partition, r.From)
	case r.To == r.From:
		return fmt.Sprintf("%d/%d", r.Partition, r.From)
	}
	return fmt.Sprintf("%d/%d-%d", r.Partition, r.From, r.To)
}

func (r Range) contains(partition int, offset int64) bool {
	return partition == r.Partition && offset >= r.From && (r.To < 0 || offset <= r.To)
}

// Selection chooses dead letters. A record matches when every set field
// matches; the zero Selection matches everything.
type Selection struct {
	// Reasons, when set, are the dlq.reason values to keep.
	Reasons []string
	// Since and Until bound Record.Time to [Since, Until); zero is no
	// bound.
	Since, Until time.Time
	// Ranges, when set, are the partitions and offsets to keep.
	Ranges []Range
}

// Empty reports whether s selects everything.
func (s Selection) Empty() bool {
	return len(s.Reasons) == 0 && s.Since.IsZero() && s.Until.IsZero() && len(s.Ranges) == 0
}

// Validate reports a selection that can match nothing by construction.
func (s Selection) Validate() error {
	if !s.Since.IsZero() && !s.Until.IsZero() && !s.Until.After(s.Since) {
		return fmt.Errorf("until %s must be after since %s", s.Until.UTC().Format(time.RFC3339), s.Since.UTC().Format(time.RFC3339))
	}
	for _, r := range s.Reasons {
		if r == "" {
			return fmt.Errorf("an empty reason matches no dead letter")
		}
	}
	return nil
}

// Match reports whether s keeps r.
func (s Selection) Match(r Record) bool {
	if len(s.Reasons) > 0 && !slices.Contains(s.Reasons, r.Reason) {
		return false
	}
	if !s.Since.IsZero() && r.Time.Before(s.Since) {
		return false
	}
	if !s.Until.IsZero() && !r.Time.Before(s.Until) {
		return false
	}
	return s.inRanges(r.Partition, r.Offset)
}

func (s Selection) inRanges(partition int, offset int64) bool {
	if len(s.Ranges) == 0 {
		return true
	}
	for _, rg := range s.Ranges {
		if rg.contains(partition, offset) {
			return true
		}
	}
	return false
}

// bounds narrows [first, last) of a partition to the offsets the ranges can
// match; ok is false when none can.
func (s Selection) bounds(partition int, first, last int64) (from, to int64, ok bool) {
	if len(s.Ranges) == 0 {
		return first, last, first < last
	}
	from, to = last, first
	for _, rg := range s.Ranges {
		if rg.Partition != partition {
			continue
		}
		end := last
		if rg.To >= 0 {
			end = min(last, rg.To+1)
		}
		from, to = min(from, max(first, rg.From)), max(to, end)
	}
	return from, to, from < to
}
