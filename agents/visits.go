package agents

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/stream"
)

// Agent names of the two visit stages, for logs and metrics.
const (
	VisitsAgentName  = "visits"
	WindowsAgentName = "windows"
)

// Reasons the visit agents dead-letter with, besides the shared ones.
const (
	// ReasonBadTimestamp: a visit's timestamp (or a rating record's) is
	// before 2000, or a visit's is too far from the time Kafka recorded for
	// the message (VisitLimits.MaxFuture, MaxPast).
	ReasonBadTimestamp Reason = "bad_timestamp"
	// ReasonFutureTimestamp: a visit (or a rating record) is stamped more
	// than the maximum clock skew ahead of the wall clock of the worker that
	// reads it.
	ReasonFutureTimestamp Reason = "future_timestamp"
	// ReasonBadStoreID: store_id is empty, too long or not valid text.
	ReasonBadStoreID Reason = "bad_store_id"
	// ReasonLate: the visit's window had already closed when it arrived.
	ReasonLate Reason = "late"
)

// VisitReasons lists every reason the visit agents dead-letter with.
var VisitReasons = []Reason{
	ReasonTooLarge, ReasonMalformedJSON, ReasonMissingField, ReasonWrongType,
	ReasonBadID, ReasonBadStoreID, ReasonBadTimestamp, ReasonFutureTimestamp, ReasonLate,
}

// DefaultMaxClockSkew is how far ahead of the worker's wall clock a visit or
// a rating record may be stamped; the package doc says why 30 s.
const DefaultMaxClockSkew = 30 * time.Second

// maxClockSkew is the skew a configuration's value stands for: 0 means the
// default, a negative value none at all.
func maxClockSkew(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return DefaultMaxClockSkew
	}
	return d
}

// VisitLimits bound what the visits agent accepts.
type VisitLimits struct {
	// MaxMessageBytes caps a message. Default 64 KiB.
	MaxMessageBytes int
	// MaxIDLen caps id and store_id, in bytes. Default 128.
	MaxIDLen int
	// MaxFuture is how far after the message's Kafka timestamp a visit may
	// be stamped. Default 1h.
	MaxFuture time.Duration
	// MaxPast is how far before the message's Kafka timestamp a visit may
	// be stamped. Default 7 days.
	MaxPast time.Duration
}

func (l VisitLimits) withDefaults() VisitLimits {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = 64 << 10
	}
	if l.MaxIDLen <= 0 {
		l.MaxIDLen = 128
	}
	if l.MaxFuture <= 0 {
		l.MaxFuture = time.Hour
	}
	if l.MaxPast <= 0 {
		l.MaxPast = 7 * 24 * time.Hour
	}
	return l
}

// minVisitTime is the earliest timestamp a visit, or a rating's record, may
// carry.
var minVisitTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

var minVisitSeconds = float64(minVisitTime.Unix())

// formatSeconds writes unix seconds as RFC 3339 when they are a time of
// years 1 to 9999, else as the number.
func formatSeconds(s float64) string {
	if s >= -62135596800 && s < 253402300800 {
		return time.UnixMilli(int64(math.Floor(s * 1000))).UTC().Format(time.RFC3339Nano)
	}
	return strconv.FormatFloat(s, 'g', -1, 64) + " s"
}

// Visit is a validated visit.
type Visit struct {
	ID        string  `json:"id"`
	AccountID int64   `json:"account_id"`
	StoreID   *string `json:"store_id"`
	// Timestamp is unix seconds with a fraction.
	Timestamp float64 `json:"timestamp"`
}

// Time returns the visit's timestamp, to the millisecond.
func (v Visit) Time() time.Time { return time.UnixMilli(int64(math.Floor(v.Timestamp * 1000))) }

// GroupKey is the repartition key of the visit's (account_id, store_id):
// `352:"uk"`, or `352:null` without a store.
func (v Visit) GroupKey() []byte { return AppendGroupKey(nil, v.AccountID, v.StoreID) }

// AppendGroupKey appends the repartition key of (account, store) to dst.
func AppendGroupKey(dst []byte, account int64, store *string) []byte {
	if store == nil {
		return appendGroupKey(dst, account, nil)
	}
	return appendGroupKey(dst, account, []byte(*store))
}

// AppendJSON appends the visit's canonical JSON, the repartition topic's
// value.
func (v Visit) AppendJSON(dst []byte) []byte {
	f := visitFields{id: []byte(v.ID), account: v.AccountID, ts: v.Timestamp}
	if v.StoreID != nil {
		f.store = []byte(*v.StoreID)
	}
	return appendVisitJSON(dst, f)
}

// VisitsConfig configures the two visit stages.
type VisitsConfig struct {
	// InputTopic carries visits. Default "visits".
	InputTopic string
	// RepartitionTopic carries visits keyed by (account_id, store_id).
	// Default "visits-repartition".
	RepartitionTopic string
	// RepartitionPartitions is the repartition topic's partition count when
	// the agent creates it. Default 4.
	RepartitionPartitions int
	// OutputTopic receives the windowed counts; it has one partition.
	// Default "active-visitors".
	OutputTopic string
	// DeadLetterTopic receives refused visits. Default "visits-dlq".
	DeadLetterTopic string
	// GroupID is the consumer group of the repartition stage; the window
	// stage uses GroupID + "-windows". Default "domination-visits".
	GroupID string
	// Window is the tumbling window size. Default 10s.
	Window time.Duration
	// Grace is how long after a window's end, in event time, visits are
	// still counted in it. Default 5s.
	Grace time.Duration
	// MaxClockSkew is how far ahead of the re-keying worker's wall clock a
	// visit may be stamped; beyond it the visit is dead-lettered
	// (ReasonFutureTimestamp). Default DefaultMaxClockSkew; negative: none.
	MaxClockSkew time.Duration
	// Limits bound accepted visits.
	Limits VisitLimits
	// Batching bounds each produce-and-commit cycle of both stages.
	Batching Batching
}

// WithDefaults returns c with its zero fields set to the documented defaults.
func (c VisitsConfig) WithDefaults() VisitsConfig {
	if c.InputTopic == "" {
		c.InputTopic = "visits"
	}
	if c.RepartitionTopic == "" {
		c.RepartitionTopic = "visits-repartition"
	}
	if c.RepartitionPartitions <= 0 {
		c.RepartitionPartitions = 4
	}
	if c.OutputTopic == "" {
		c.OutputTopic = "active-visitors"
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = "visits-dlq"
	}
	if c.GroupID == "" {
		c.GroupID = "domination-visits"
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	if c.Grace < 0 {
		c.Grace = 0
	} else if c.Grace == 0 {
		c.Grace = 5 * time.Second
	}
	c.Limits = c.Limits.withDefaults()
	return c
}

// Validate reports a setting that cannot work.
func (c VisitsConfig) Validate() error {
	c = c.WithDefaults()
	for _, t := range []string{c.InputTopic, c.RepartitionTopic, c.OutputTopic, c.DeadLetterTopic} {
		if err := broker.ValidTopic(t); err != nil {
			return fmt.Errorf("visits agent: %w", err)
		}
	}
	if c.Window%time.Second != 0 {
		return fmt.Errorf("visits agent: window %s must be whole seconds", c.Window)
	}
	seen := map[string]bool{}
	for _, t := range []string{c.InputTopic, c.RepartitionTopic, c.OutputTopic, c.DeadLetterTopic} {
		if seen[t] {
			return fmt.Errorf("visits agent: topic %s is used twice", t)
		}
		seen[t] = true
	}
	return nil
}

// Topics returns the topics the visit agents need.
func (c VisitsConfig) Topics() []Topic {
	c = c.WithDefaults()
	return []Topic{
		{Name: c.InputTopic, Partitions: broker.SharedPartitions},
		{Name: c.RepartitionTopic, Partitions: c.RepartitionPartitions},
		{Name: c.OutputTopic, Partitions: broker.SinglePartition},
		{Name: c.DeadLetterTopic, Partitions: broker.SinglePartition},
	}
}

// Visits runs both visit stages: re-keying and windowed counting.
type Visits struct {
	repartition, windows *stream.Runner
}

// NewVisits builds the visit agents; Run starts them.
func NewVisits(cfg VisitsConfig, rt Runtime) (*Visits, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dead := deadCounters(rt.Metrics, VisitsAgentName, VisitReasons)
	rc := rt.streamConfig(VisitsAgentName, cfg.InputTopic, cfg.GroupID, cfg.Batching)
	repartition, err := stream.New(rc, rt.Dialer, rt.Admin, rt.Writer, func(stream.Partition) stream.Processor {
		return &repartitioner{cfg: cfg, dead: dead, now: rt.Now}
	}, rt.Metrics, rt.Log)
	if err != nil {
		return nil, fmt.Errorf("visits agent: %w", err)
	}
	wdead := deadCounters(rt.Metrics, WindowsAgentName, VisitReasons)
	open := rt.Metrics.OpenWindows.WithLabelValues(WindowsAgentName)
	wc := rt.streamConfig(WindowsAgentName, cfg.RepartitionTopic, cfg.GroupID+"-windows", cfg.Batching)
	windows, err := stream.New(wc, rt.Dialer, rt.Admin, rt.Writer, func(p stream.Partition) stream.Processor {
		return newWindower(cfg, p, wdead, open, rt.Log)
	}, rt.Metrics, rt.Log)
	if err != nil {
		return nil, fmt.Errorf("windows agent: %w", err)
	}
	return &Visits{repartition: repartition, windows: windows}, nil
}

// Run runs both stages until ctx ends. A stage that fails stops the other,
// and Run returns its error once both have returned.
func (v *Visits) Run(ctx context.Context) error {
	return runStages(ctx, v.repartition.Run, v.windows.Run)
}

// repartitioner validates visits and re-keys them by (account_id,
// store_id). Its output's key and value are a pure function of the input
// record; the output's timestamp is when it was re-keyed.
type repartitioner struct {
	cfg  VisitsConfig
	dead map[Reason]prometheus.Counter
	// now is the wall clock (time.Now when nil).
	now func() time.Time
	// arena holds encoded keys and values, as the shadow agent's does.
	arena []byte
}

func (p *repartitioner) Process(m *kafka.Message, out *stream.Output) {
	v, derr := decodeVisit(m.Value, m.Time, p.cfg.Limits)
	now := clock(p.now)
	if derr == nil {
		derr = checkAhead("visit", v.ts, now, maxClockSkew(p.cfg.MaxClockSkew))
	}
	if derr != nil {
		p.dead[derr.Reason].Inc()
		out.Emit(deadLetter(p.cfg.DeadLetterTopic, VisitsAgentName, m, derr.Reason, derr.Detail, DefaultMaxDeadLetterBytes))
		return
	}
	// The record's timestamp is the re-keying time: the windows agent never
	// lets event time pass it (see the package doc).
	// Escaping grows a byte to at most 6 (\u00XX), quoting a key's store
	// to 10 (\U0010ffff).
	if need := 10*len(v.store) + 6*len(v.id) + 128; cap(p.arena)-len(p.arena) < need {
		p.arena = make([]byte, 0, max(arenaSize, need))
	}
	start := len(p.arena)
	p.arena = appendGroupKey(p.arena, v.account, v.store)
	mid := len(p.arena)
	p.arena = appendVisitJSON(p.arena, v)
	out.Emit(kafka.Message{
		Topic: p.cfg.RepartitionTopic,
		Key:   p.arena[start:mid:mid],
		Value: p.arena[mid:len(p.arena):len(p.arena)],
		Time:  now,
	})
}

func clock(now func() time.Time) time.Time {
	if now == nil {
		return time.Now()
	}
	return now()
}

// checkAhead refuses a timestamp (unix seconds) more than skew ahead of now.
func checkAhead(what string, ts float64, now time.Time, skew time.Duration) *DecodeError {
	limit := now.Add(skew)
	if ts <= float64(limit.UnixMilli())/1000 {
		return nil
	}
	return decodeErr(ReasonFutureTimestamp, "%s stamped %s is more than %s ahead of the wall clock (%s)", what, formatSeconds(ts), skew, now.UTC().Format(time.RFC3339Nano))
}

// Rejected dead-letters the visit whose re-keyed copy Kafka refused for good.
func (p *repartitioner) Rejected(m kafka.Message, in *kafka.Message, cause error, out *stream.Output) {
	p.dead[ReasonTooLarge].Inc()
	out.Emit(refusedDeadLetter(p.cfg.DeadLetterTopic, VisitsAgentName, m, in, ReasonTooLarge, cause, DefaultMaxDeadLetterBytes))
}

// AppendJSONString appends s as a JSON string, escaped as encoding/json
// would (invalid UTF-8 becomes U+FFFD), the way every agent output is.
func AppendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}
