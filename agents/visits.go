package agents

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/stream"
	"github.com/domination/domination/wire"
)

// Agent names of the two visit stages, for logs and metrics.
const (
	VisitsAgentName  = "visits"
	WindowsAgentName = "windows"
)

// VisitReasons lists every reason the visit agents dead-letter with.
var VisitReasons = []wire.Reason{
	wire.ReasonTooLarge, wire.ReasonMalformedJSON, wire.ReasonMissingField, wire.ReasonWrongType,
	wire.ReasonBadID, wire.ReasonBadStoreID, wire.ReasonBadTimestamp, wire.ReasonFutureTimestamp, wire.ReasonLate,
}

// Defaults of VisitsConfig.
const (
	DefaultVisitsInputTopic      = wire.VisitsTopic
	DefaultRepartitionTopic      = wire.RepartitionTopic
	DefaultRepartitionPartitions = broker.SharedPartitions
	DefaultActiveVisitorsTopic   = wire.ActiveVisitorsTopic
	DefaultVisitsDeadLetterTopic = wire.VisitsDeadLetterTopic
	DefaultVisitsGroupID         = "domination-visits"
	DefaultRepartitionFormat     = RepartitionCompact
	DefaultWindow                = 10 * time.Second
	DefaultGrace                 = 5 * time.Second
)

// The forms of the repartition topic's value. The windows stage reads
// both, whichever it was configured to write.
const (
	// RepartitionCompact is wire.AppendRepartitioned's binary form.
	RepartitionCompact = "compact"
	// RepartitionJSON is the visit's canonical JSON
	// (wire.AppendRepartitionedJSON), the only form of versions before the
	// compact one: run every worker with it until none of those reads the
	// repartition topic any more, then switch to compact.
	RepartitionJSON = "json"
)

// VisitsConfig configures the two visit stages.
type VisitsConfig struct {
	// InputTopic carries visits (wire.Visit). Default
	// DefaultVisitsInputTopic.
	InputTopic string
	// RepartitionTopic carries visits keyed by (account_id, store_id)
	// (wire.Repartitioned). Default DefaultRepartitionTopic.
	RepartitionTopic string
	// RepartitionFormat is the form the first stage writes the repartition
	// topic's values in: RepartitionCompact or RepartitionJSON. Default
	// DefaultRepartitionFormat.
	RepartitionFormat string
	// RepartitionPartitions is the repartition topic's partition count when
	// the agent creates it. Default DefaultRepartitionPartitions.
	RepartitionPartitions int
	// OutputTopic receives the windowed counts (wire.ActiveVisitors); it
	// has one partition. Default DefaultActiveVisitorsTopic.
	OutputTopic string
	// DeadLetterTopic receives refused visits. Default
	// DefaultVisitsDeadLetterTopic.
	DeadLetterTopic string
	// GroupID is the consumer group of the repartition stage; the window
	// stage uses GroupID + "-windows". Default DefaultVisitsGroupID.
	GroupID string
	// Window is the tumbling window size. Default DefaultWindow.
	Window time.Duration
	// Grace is how long after a window's end, in event time, visits are
	// still counted in it. Default DefaultGrace; negative: none.
	Grace time.Duration
	// MaxClockSkew is how far ahead of the re-keying worker's wall clock a
	// visit may be stamped; beyond it the visit is dead-lettered
	// (wire.ReasonFutureTimestamp). Default DefaultMaxClockSkew; negative:
	// none.
	MaxClockSkew time.Duration
	// Limits bound accepted visits. Default the wire.VisitLimits defaults,
	// field by field.
	Limits wire.VisitLimits
	// Batching bounds each produce-and-commit cycle of both stages. Default
	// DefaultMaxBatch and DefaultMaxWait.
	Batching Batching
}

// WithDefaults returns a copy of c with its zero fields set to the
// documented defaults; applying it twice changes nothing more. A negative
// Grace or MaxClockSkew stays as it is: it means none.
func (c VisitsConfig) WithDefaults() VisitsConfig {
	c.InputTopic = cmp.Or(c.InputTopic, DefaultVisitsInputTopic)
	c.RepartitionTopic = cmp.Or(c.RepartitionTopic, DefaultRepartitionTopic)
	c.RepartitionFormat = cmp.Or(c.RepartitionFormat, DefaultRepartitionFormat)
	c.RepartitionPartitions = cmp.Or(max(c.RepartitionPartitions, 0), DefaultRepartitionPartitions)
	c.OutputTopic = cmp.Or(c.OutputTopic, DefaultActiveVisitorsTopic)
	c.DeadLetterTopic = cmp.Or(c.DeadLetterTopic, DefaultVisitsDeadLetterTopic)
	c.GroupID = cmp.Or(c.GroupID, DefaultVisitsGroupID)
	c.Window = cmp.Or(max(c.Window, 0), DefaultWindow)
	c.Grace = cmp.Or(c.Grace, DefaultGrace)
	c.MaxClockSkew = cmp.Or(c.MaxClockSkew, DefaultMaxClockSkew)
	c.Limits = c.Limits.WithDefaults()
	c.Batching = c.Batching.WithDefaults()
	return c
}

// Validate reports a setting that cannot work. It applies no defaults: call
// it on WithDefaults' result.
func (c VisitsConfig) Validate() error {
	for _, t := range []string{c.InputTopic, c.RepartitionTopic, c.OutputTopic, c.DeadLetterTopic} {
		if err := broker.ValidTopic(t); err != nil {
			return fmt.Errorf("visits agent: %w", err)
		}
	}
	if c.RepartitionFormat != RepartitionCompact && c.RepartitionFormat != RepartitionJSON {
		return fmt.Errorf("visits agent: repartition format %q is neither %q nor %q", c.RepartitionFormat, RepartitionCompact, RepartitionJSON)
	}
	if c.Window <= 0 {
		return fmt.Errorf("visits agent: window %s is not positive", c.Window)
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

// Visits runs both visit stages: re-keying here, windowed counting in
// Windows.
type Visits struct {
	repartition *stream.Runner
	windows     *Windows
}

// NewVisits builds the visit agents; Run starts them.
func NewVisits(cfg VisitsConfig, rt Runtime) (*Visits, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dead := deadCounters(rt.Metrics, VisitsAgentName, VisitReasons)
	repartition, err := rt.stage(VisitsAgentName, cfg.InputTopic, cfg.GroupID, cfg.Batching, func(stream.Partition) stream.Processor {
		return &repartitioner{cfg: cfg, dead: dead, clock: wallClock{now: rt.Now}}
	})
	if err != nil {
		return nil, err
	}
	windows, err := NewWindows(cfg, rt)
	if err != nil {
		return nil, err
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
	dead map[wire.Reason]prometheus.Counter
	// clock stamps the outputs and judges the visits' skew.
	clock wallClock
	// arena holds encoded keys and values, as the shadow agent's does.
	arena []byte
}

func (p *repartitioner) Process(m *kafka.Message, out *stream.Output) {
	v, derr := wire.ScanVisit(m.Value, m.Time, p.cfg.Limits)
	if derr == nil {
		derr = p.clock.ahead("visit", v.Timestamp, out, maxClockSkew(p.cfg.MaxClockSkew))
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
	if need := 10*len(v.StoreID) + 6*len(v.ID) + 128; cap(p.arena)-len(p.arena) < need {
		p.arena = make([]byte, 0, max(arenaSize, need))
	}
	start := len(p.arena)
	p.arena = wire.AppendGroupKey(p.arena, v.AccountID, v.StoreID)
	mid := len(p.arena)
	if p.cfg.RepartitionFormat == RepartitionJSON {
		p.arena = wire.AppendRepartitionedJSON(p.arena, v)
	} else {
		p.arena = wire.AppendRepartitioned(p.arena, v)
	}
	out.Emit(kafka.Message{
		Topic: p.cfg.RepartitionTopic,
		Key:   p.arena[start:mid:mid],
		Value: p.arena[mid:len(p.arena):len(p.arena)],
		Time:  p.clock.reading(out),
	})
}

// Rejected dead-letters the visit whose re-keyed copy Kafka refused for good.
func (p *repartitioner) Rejected(m kafka.Message, in *kafka.Message, cause error, out *stream.Output) {
	p.dead[wire.ReasonTooLarge].Inc()
	out.Emit(refusedDeadLetter(p.cfg.DeadLetterTopic, VisitsAgentName, m, in, wire.ReasonTooLarge, cause, DefaultMaxDeadLetterBytes))
}
