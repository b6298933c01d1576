package verify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/backoff"
	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/dlq"
	"github.com/domination/domination/producer"
	"github.com/domination/domination/wire"
)

// Source reads what a reconciliation compares: input and dead-letter
// topics from Kafka, the stores from ClickHouse.
type Source struct {
	// Brokers and Dialer reach Kafka (TLS and SASL live in the Dialer).
	Brokers []string
	Dialer  *kafka.Dialer
	// Conn is connected to the database holding shadow and
	// active_visitors.
	Conn driver.Conn
}

// Records returns every record of every partition of topic as it stands
// now, from the first offset whose timestamp is at or after since (the
// start of the topic when since is zero). A topic that does not exist
// holds no records.
func (s *Source) Records(ctx context.Context, topic string, since time.Time) ([]kafka.Message, error) {
	if len(s.Brokers) == 0 {
		return nil, errors.New("verify: no kafka brokers")
	}
	dialer := s.Dialer
	if dialer == nil {
		dialer = &kafka.Dialer{Timeout: 10 * time.Second}
	}
	var parts []kafka.Partition
	err := s.eachBroker(func(b string) (err error) {
		parts, err = dialer.LookupPartitions(ctx, "tcp", b, topic)
		return err
	})
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", topic, err)
	}
	var out []kafka.Message
	for _, p := range parts {
		var msgs []kafka.Message
		err = broker.RetryTemporary(ctx, func() (err error) {
			msgs, err = s.partition(ctx, dialer, topic, p.ID, since)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// eachBroker calls fn with each bootstrap broker in turn until one answers
// (nil, or a Kafka error: the cluster's answer, which another broker would
// repeat): a reconciliation must work with a broker down.
func (s *Source) eachBroker(fn func(broker string) error) error {
	var err error
	for _, b := range s.Brokers {
		var ke kafka.Error
		if err = fn(b); err == nil || errors.As(err, &ke) {
			return err
		}
	}
	return err
}

func (s *Source) partition(ctx context.Context, dialer *kafka.Dialer, topic string, id int, since time.Time) ([]kafka.Message, error) {
	var conn *kafka.Conn
	err := s.eachBroker(func(b string) (err error) {
		conn, err = dialer.DialLeader(ctx, "tcp", b, topic, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connect to the leader of %s/%d: %w", topic, id, err)
	}
	first, last, err := conn.ReadOffsets()
	if err == nil && !since.IsZero() {
		var at int64
		if at, err = conn.ReadOffset(since); err == nil && at >= 0 {
			first = max(first, at)
		} else if err == nil {
			first = last
		}
	}
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("read offsets of %s/%d: %w", topic, id, err)
	}
	if first >= last {
		return nil, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: s.Brokers, Topic: topic, Partition: id, Dialer: dialer,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return nil, fmt.Errorf("read %s/%d: %w", topic, id, err)
	}
	out := make([]kafka.Message, 0, last-first)
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read %s/%d at offset %d of %d: %w", topic, id, first+int64(len(out)), last, err)
		}
		out = append(out, m)
		if m.Offset+1 >= last {
			return out, nil
		}
	}
}

// Inputs reads an input topic as Inputs.
func (s *Source) Inputs(ctx context.Context, topic string, since time.Time) ([]Input, error) {
	return readRecords(ctx, s, topic, since, parseInput)
}

// DeadLetters reads a dead-letter topic.
func (s *Source) DeadLetters(ctx context.Context, topic string, since time.Time) ([]DeadLetter, error) {
	return readRecords(ctx, s, topic, since, ParseDeadLetter)
}

// readRecords reads topic's records as Records does, each turned into a T
// by parse.
func readRecords[T any](ctx context.Context, s *Source, topic string, since time.Time, parse func(kafka.Message) T) ([]T, error) {
	msgs, err := s.Records(ctx, topic, since)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(msgs))
	for i, m := range msgs {
		out[i] = parse(m)
	}
	return out, nil
}

// parseInput reads an input record: where it is, and whether it was
// replayed from a dead-letter topic.
func parseInput(m kafka.Message) Input {
	in := Input{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Time: m.Time.Unix(), Key: m.Key, Value: m.Value}
	for _, h := range m.Headers {
		if h.Key == dlq.HeaderReplayedFrom {
			in.Replayed = true
		}
	}
	return in
}

// ParseDeadLetter reads the dlq.* headers of a dead-letter record.
func ParseDeadLetter(m kafka.Message) DeadLetter {
	p, err := strconv.Atoi(wire.HeaderValue(m.Headers, wire.HeaderPartition))
	if err != nil {
		p = -1
	}
	o, err := strconv.ParseInt(wire.HeaderValue(m.Headers, wire.HeaderOffset), 10, 64)
	if err != nil {
		o = -1
	}
	return DeadLetter{
		Topic:     wire.HeaderValue(m.Headers, wire.HeaderTopic),
		Partition: p,
		Offset:    o,
		Key:       m.Key,
		Value:     m.Value,
		Reason:    wire.HeaderValue(m.Headers, wire.HeaderReason),
		Agent:     wire.HeaderValue(m.Headers, wire.HeaderAgent),
	}
}

// ShadowRows reads shadow FINAL with emit_timestamp in [from, to] (unix
// seconds).
func (s *Source) ShadowRows(ctx context.Context, from, to int64) ([]ShadowRow, error) {
	return readRows(ctx, s.Conn, "shadow", func(r *ShadowRow) []any { return []any{&r.UniqueID, &r.EmitTimestamp, &r.Type, &r.Rating} },
		"SELECT unique_id, toInt64(toUInt32(emit_timestamp)), toString(type), toInt64(rating) FROM shadow FINAL"+
			" WHERE emit_timestamp >= toDateTime(?) AND emit_timestamp <= toDateTime(?)", clampTime(from), clampTime(to))
}

// WindowRows reads active_visitors FINAL with window_start in [from, to]
// (unix seconds).
func (s *Source) WindowRows(ctx context.Context, from, to int64) ([]WindowRow, error) {
	return readRows(ctx, s.Conn, "active_visitors", func(r *WindowRow) []any { return []any{&r.AccountID, &r.StoreID, &r.Start, &r.Count} },
		"SELECT account_id, store_id, toInt64(toUInt32(window_start)), `count` FROM active_visitors FINAL"+
			" WHERE window_start >= toDateTime(?) AND window_start <= toDateTime(?)", clampTime(from), clampTime(to))
}

// readRows sends sql with args and scans each row into a T through the
// pointers fields returns; table names what is read, in errors.
func readRows[T any](ctx context.Context, conn driver.Conn, table string, fields func(*T) []any, sql string, args ...any) ([]T, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var r T
		if err := rows.Scan(fields(&r)...); err != nil {
			return nil, fmt.Errorf("read %s row: %w", table, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s rows: %w", table, err)
	}
	return out, nil
}

// clampTime keeps a bound inside DateTime's range.
func clampTime(sec int64) uint32 {
	return uint32(min(max(sec, 0), 1<<32-1))
}

// RatingsCheck says what to reconcile for ratings.
type RatingsCheck struct {
	// InputTopic and DeadLetterTopic are the shadow agent's.
	InputTopic, DeadLetterTopic string
	// Since bounds the records read: see Source.Records. Rows are read
	// from shadow FINAL over the span of the inputs' timestamps, or from
	// Since on when the inputs' timestamps are unknown.
	Since time.Time
	// Expected, when set, are the inputs to account for instead of the
	// input topic's records (recomputed from a seed, for example; see
	// SeededRatings).
	Expected []Input
}

// Ratings prepares a ratings reconciliation: it reads the inputs once and
// returns a function that reads the store and the dead letters and
// reconciles, to be called until the pipeline has caught up (see Poll).
func (s *Source) Ratings(ctx context.Context, c RatingsCheck) (func(context.Context) (Report, error), error) {
	inputs := c.Expected
	if inputs == nil {
		var err error
		if inputs, err = s.Inputs(ctx, c.InputTopic, c.Since); err != nil {
			return nil, err
		}
	}
	from, to := int64(1<<62), int64(-1<<62)
	for _, in := range inputs {
		if in.Time != 0 {
			from, to = min(from, in.Time), max(to, in.Time)
		} else {
			from, to = min(from, c.Since.Unix()), max(to, 1<<32-1)
		}
	}
	read := func(ctx context.Context) ([]ShadowRow, error) { return s.ShadowRows(ctx, from, to) }
	return reconciliation(s, inputs, read, c.DeadLetterTopic, c.Since, ReconcileRatings), nil
}

// reconciliation is the second step Ratings and Visits return: it reads
// the store with read (nothing when there were no inputs) and the dead
// letters of deadTopic since since, and reconciles them with inputs.
func reconciliation[R any](s *Source, inputs []Input, read func(context.Context) ([]R, error), deadTopic string, since time.Time,
	reconcile func([]Input, []R, []DeadLetter) Report) func(context.Context) (Report, error) {
	return func(ctx context.Context) (Report, error) {
		var rows []R
		if len(inputs) > 0 {
			var err error
			if rows, err = read(ctx); err != nil {
				return Report{}, err
			}
		}
		dead, err := s.DeadLetters(ctx, deadTopic, since)
		if err != nil {
			return Report{}, err
		}
		return reconcile(inputs, rows, dead), nil
	}
}

// VisitsCheck says what to reconcile for visits.
type VisitsCheck struct {
	// InputTopic and DeadLetterTopic are the visits agents'.
	InputTopic, DeadLetterTopic string
	// Window is the workers' tumbling window size. Default 10s.
	Window time.Duration
	// Since bounds the records read: see Source.Records.
	Since time.Time
}

// Visits prepares a visits reconciliation, as Ratings does.
func (s *Source) Visits(ctx context.Context, c VisitsCheck) (func(context.Context) (Report, error), error) {
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	inputs, err := s.Inputs(ctx, c.InputTopic, c.Since)
	if err != nil {
		return nil, err
	}
	// Windows are keyed by the visits' own timestamps, which may lie a
	// week before their record's: read every window that could hold one.
	from, to := int64(1<<62), int64(-1<<62)
	for _, in := range inputs {
		from, to = min(from, in.Time), max(to, in.Time)
	}
	from -= int64((8 * 24 * time.Hour).Seconds())
	to += int64((2 * time.Hour).Seconds())
	read := func(ctx context.Context) ([]WindowRow, error) { return s.WindowRows(ctx, from, to) }
	return reconciliation(s, inputs, read, c.DeadLetterTopic, c.Since, func(inputs []Input, rows []WindowRow, dead []DeadLetter) Report {
		return ReconcileVisits(inputs, rows, dead, c.Window)
	}), nil
}

// Poll calls check every interval until its report is OK or ctx ends, and
// returns the last report. An error from check ends the polling.
func Poll(ctx context.Context, interval time.Duration, check func(context.Context) (Report, error)) (Report, error) {
	var last Report
	for n := 0; ; n++ {
		r, err := check(ctx)
		if err != nil && n > 0 && ctx.Err() != nil {
			return last, nil // out of time while checking: the last answer stands
		}
		if err != nil || r.OK() {
			return r, err
		}
		last = r
		if !backoff.Sleep(ctx, interval) {
			return r, nil
		}
	}
}

// SeededRatings recomputes the inputs of `domination produce ratings
// --seed seed --count count --min lo --max hi`, without their Kafka
// coordinates or timestamps: they are matched by unique_id (the key the
// producer gives each rating).
func SeededRatings(seed int64, count int, lo, hi int64) []Input {
	s := producer.NewRatingStream(seed, lo, hi)
	out := make([]Input, count)
	for i := range out {
		v, id := s.AppendJSON(nil)
		out[i] = Input{Partition: -1, Offset: -1, Key: []byte(id), Value: v}
	}
	return out
}
