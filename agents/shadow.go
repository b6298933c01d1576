package agents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/stream"
)

// ShadowAgentName labels the shadow agent in logs and metrics.
const ShadowAgentName = "shadow"

// Reasons the shadow agent adds to the decoder's.
const (
	// ReasonOutputRejected: Kafka refused the output for good (too large).
	ReasonOutputRejected Reason = "output_rejected"
)

// ShadowReasons lists every reason the shadow agent dead-letters with.
var ShadowReasons = []Reason{
	ReasonMalformedJSON, ReasonMissingField, ReasonWrongType, ReasonOutOfRange,
	ReasonBadID, ReasonTooLarge, ReasonBadTimestamp, ReasonFutureTimestamp, ReasonOutputRejected,
}

// ShadowConfig configures the shadow agent.
type ShadowConfig struct {
	// InputTopic carries ratings. Default "dominate".
	InputTopic string
	// OutputTopic receives shadow events. Default "shadow".
	OutputTopic string
	// DeadLetterTopic receives refused inputs. Default "dominate-dlq".
	DeadLetterTopic string
	// GroupID is the consumer group of the workers. Default
	// "domination-shadow".
	GroupID string
	// Limits bound accepted ratings; see DefaultRatingLimits.
	Limits RatingLimits
	// MaxClockSkew is how far ahead of the worker's wall clock a rating
	// record may be stamped; beyond it the rating is dead-lettered
	// (ReasonFutureTimestamp). Default DefaultMaxClockSkew; negative: none.
	MaxClockSkew time.Duration
	// MaxDeadLetterBytes caps a dead-letter value. Default
	// DefaultMaxDeadLetterBytes.
	MaxDeadLetterBytes int
	// Batching bounds each produce-and-commit cycle.
	Batching Batching
}

// WithDefaults returns c with its zero fields set to the documented defaults.
func (c ShadowConfig) WithDefaults() ShadowConfig {
	if c.InputTopic == "" {
		c.InputTopic = "dominate"
	}
	if c.OutputTopic == "" {
		c.OutputTopic = "shadow"
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = "dominate-dlq"
	}
	if c.GroupID == "" {
		c.GroupID = "domination-shadow"
	}
	if c.Limits == (RatingLimits{}) {
		c.Limits = DefaultRatingLimits()
	}
	if c.MaxDeadLetterBytes <= 0 {
		c.MaxDeadLetterBytes = DefaultMaxDeadLetterBytes
	}
	return c
}

// Validate reports a setting that cannot work.
func (c ShadowConfig) Validate() error {
	for _, t := range []string{c.InputTopic, c.OutputTopic, c.DeadLetterTopic} {
		if err := broker.ValidTopic(t); err != nil {
			return fmt.Errorf("shadow agent: %w", err)
		}
	}
	if c.InputTopic == c.OutputTopic || c.InputTopic == c.DeadLetterTopic {
		return errors.New("shadow agent: the input topic must differ from the output and dead-letter topics")
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("shadow agent: %w", err)
	}
	return nil
}

// Topics returns the topics the agent needs, for creating them at start.
func (c ShadowConfig) Topics() []Topic {
	return []Topic{{Name: c.InputTopic, Partitions: broker.SharedPartitions}, {Name: c.OutputTopic, Partitions: broker.SharedPartitions}, {Name: c.DeadLetterTopic, Partitions: broker.SinglePartition}}
}

// Shadow is the shadow agent: ratings in, typed shadow events out.
type Shadow struct {
	cfg    ShadowConfig
	runner *stream.Runner
}

// NewShadow builds the agent; Run starts it.
func NewShadow(cfg ShadowConfig, rt Runtime) (*Shadow, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lim := cfg.Limits.withDefaults()
	dead := deadCounters(rt.Metrics, ShadowAgentName, ShadowReasons)
	sc := rt.streamConfig(ShadowAgentName, cfg.InputTopic, cfg.GroupID, cfg.Batching)
	factory := func(stream.Partition) stream.Processor {
		return &shadowProcessor{cfg: cfg, lim: lim, dead: dead, log: rt.Log, now: rt.Now}
	}
	runner, err := stream.New(sc, rt.Dialer, rt.Admin, rt.Writer, factory, rt.Metrics, rt.Log)
	if err != nil {
		return nil, fmt.Errorf("shadow agent: %w", err)
	}
	return &Shadow{cfg: cfg, runner: runner}, nil
}

// Run consumes until ctx ends, then drains and commits.
func (s *Shadow) Run(ctx context.Context) error { return s.runner.Run(ctx) }

// Owned returns the input partitions this worker consumes now.
func (s *Shadow) Owned() []int { return s.runner.Owned() }

// shadowProcessor classifies the ratings of one partition.
type shadowProcessor struct {
	cfg  ShadowConfig
	lim  RatingLimits
	dead map[Reason]prometheus.Counter
	log  *slog.Logger
	// now is the wall clock (time.Now when nil).
	now func() time.Time
	// arena holds encoded outputs. Emitted values are sub-slices of it and
	// must stay valid until produced, so a full arena is replaced, never
	// reused: the old one lives until its records are written.
	arena []byte
}

const arenaSize = 256 << 10

// Process classifies one rating. The output is a pure function of the input
// record: emit_timestamp is the input record's timestamp, so a re-delivered
// rating produces the same row, which the ReplacingMergeTree collapses.
func (p *shadowProcessor) Process(m *kafka.Message, out *stream.Output) {
	r, err := DecodeRating(m.Value, p.lim)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			p.reject(m, de.Reason, de.Detail, out)
		} else {
			p.reject(m, ReasonMalformedJSON, err.Error(), out)
		}
		return
	}
	if m.Time.Before(minVisitTime) {
		// The record's timestamp becomes emit_timestamp: one before 2000
		// (none, or the epoch) is a producer's bug, not a rating's time.
		p.reject(m, ReasonBadTimestamp, fmt.Sprintf("the input record's timestamp %s is before 2000", m.Time.UTC().Format(time.RFC3339)), out)
		return
	}
	// One ahead of the wall clock by more than the skew is a producer's
	// clock gone wrong: its emit_timestamp would be in the future.
	if de := checkAhead("the input record", float64(m.Time.UnixMilli())/1000, clock(p.now), maxClockSkew(p.cfg.MaxClockSkew)); de != nil {
		p.reject(m, de.Reason, de.Detail, out)
		return
	}
	if cap(p.arena)-len(p.arena) < len(r.UniqueID)*6+96 {
		p.arena = make([]byte, 0, max(arenaSize, len(r.UniqueID)*6+96))
	}
	start := len(p.arena)
	p.arena = AppendShadow(p.arena, Classify(r.Rating), r.UniqueID, m.Time.Unix(), r.Rating)
	out.Emit(kafka.Message{
		Topic: p.cfg.OutputTopic,
		Key:   r.UniqueID,
		Value: p.arena[start:len(p.arena):len(p.arena)],
		Time:  m.Time,
	})
}

func (p *shadowProcessor) reject(m *kafka.Message, reason Reason, detail string, out *stream.Output) {
	if c, ok := p.dead[reason]; ok {
		c.Inc()
	}
	out.Emit(deadLetter(p.cfg.DeadLetterTopic, ShadowAgentName, m, reason, detail, p.cfg.MaxDeadLetterBytes))
}

// Rejected dead-letters the rating whose output Kafka refused for good.
func (p *shadowProcessor) Rejected(m kafka.Message, in *kafka.Message, cause error, out *stream.Output) {
	p.log.Error("output refused by kafka; dead-lettering its input", "topic", m.Topic, "bytes", len(m.Value), "err", cause)
	if c, ok := p.dead[ReasonOutputRejected]; ok {
		c.Inc()
	}
	out.Emit(refusedDeadLetter(p.cfg.DeadLetterTopic, ShadowAgentName, m, in, ReasonOutputRejected, cause, p.cfg.MaxDeadLetterBytes))
}
