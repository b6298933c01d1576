package agents

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/stream"
	"github.com/domination/domination/wire"
)

// ShadowAgentName labels the shadow agent in logs and metrics.
const ShadowAgentName = "shadow"

// ShadowReasons lists every reason the shadow agent dead-letters with.
var ShadowReasons = []wire.Reason{
	wire.ReasonMalformedJSON, wire.ReasonMissingField, wire.ReasonWrongType, wire.ReasonOutOfRange,
	wire.ReasonBadID, wire.ReasonTooLarge, wire.ReasonBadTimestamp, wire.ReasonFutureTimestamp, wire.ReasonOutputRejected,
}

// ShadowConfig configures the shadow agent.
type ShadowConfig struct {
	// InputTopic carries ratings (wire.Rating). Default
	// DefaultShadowInputTopic.
	InputTopic string
	// OutputTopic receives shadow events (wire.Shadow). Default
	// DefaultShadowOutputTopic.
	OutputTopic string
	// DeadLetterTopic receives refused inputs. Default
	// DefaultShadowDeadLetterTopic.
	DeadLetterTopic string
	// GroupID is the consumer group of the workers. Default
	// DefaultShadowGroupID.
	GroupID string
	// Limits bound accepted ratings. Default wire.DefaultRatingLimits(),
	// field by field.
	Limits wire.RatingLimits
	// MaxClockSkew is how far ahead of the worker's wall clock a rating
	// record may be stamped; beyond it the rating is dead-lettered
	// (wire.ReasonFutureTimestamp). Default DefaultMaxClockSkew; negative:
	// none.
	MaxClockSkew time.Duration
	// MaxDeadLetterBytes caps a dead-letter value. Default
	// DefaultMaxDeadLetterBytes.
	MaxDeadLetterBytes int
	// Batching bounds each produce-and-commit cycle. Default
	// DefaultMaxBatch and DefaultMaxWait.
	Batching Batching
}

// Defaults of ShadowConfig.
const (
	DefaultShadowInputTopic      = wire.RatingsTopic
	DefaultShadowOutputTopic     = wire.ShadowTopic
	DefaultShadowDeadLetterTopic = wire.RatingsDeadLetterTopic
	DefaultShadowGroupID         = "domination-shadow"
)

// WithDefaults returns a copy of c with its zero fields set to the
// documented defaults; applying it twice changes nothing more.
func (c ShadowConfig) WithDefaults() ShadowConfig {
	c.InputTopic = cmp.Or(c.InputTopic, DefaultShadowInputTopic)
	c.OutputTopic = cmp.Or(c.OutputTopic, DefaultShadowOutputTopic)
	c.DeadLetterTopic = cmp.Or(c.DeadLetterTopic, DefaultShadowDeadLetterTopic)
	c.GroupID = cmp.Or(c.GroupID, DefaultShadowGroupID)
	c.Limits = c.Limits.WithDefaults()
	c.MaxClockSkew = cmp.Or(c.MaxClockSkew, DefaultMaxClockSkew)
	c.MaxDeadLetterBytes = cmp.Or(max(c.MaxDeadLetterBytes, 0), DefaultMaxDeadLetterBytes)
	c.Batching = c.Batching.WithDefaults()
	return c
}

// Validate reports a setting that cannot work. It applies no defaults: call
// it on WithDefaults' result.
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
	dead := deadCounters(rt.Metrics, ShadowAgentName, ShadowReasons)
	runner, err := rt.stage(ShadowAgentName, cfg.InputTopic, cfg.GroupID, cfg.Batching, func(stream.Partition) stream.Processor {
		return &shadowProcessor{cfg: cfg, dead: dead, log: rt.Log, clock: wallClock{now: rt.Now}}
	})
	if err != nil {
		return nil, err
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
	dead map[wire.Reason]prometheus.Counter
	log  *slog.Logger
	// clock is the wall clock the input's timestamps are checked against.
	clock wallClock
	// arena holds encoded outputs (see arenaSize).
	arena []byte
}

// Process classifies one rating. The output is a pure function of the input
// record: emit_timestamp is the input record's timestamp, so a re-delivered
// rating produces the same row, which the ReplacingMergeTree collapses.
func (p *shadowProcessor) Process(m *kafka.Message, out *stream.Output) {
	r, err := wire.DecodeRating(m.Value, p.cfg.Limits)
	if err != nil {
		var de *wire.DecodeError
		if errors.As(err, &de) {
			p.reject(m, de.Reason, de.Detail, out)
		} else {
			p.reject(m, wire.ReasonMalformedJSON, err.Error(), out)
		}
		return
	}
	if m.Time.Before(minTime) {
		// The record's timestamp becomes emit_timestamp: one before 2000
		// (none, or the epoch) is a producer's bug, not a rating's time.
		p.reject(m, wire.ReasonBadTimestamp, fmt.Sprintf("the input record's timestamp %s is before 2000", m.Time.UTC().Format(time.RFC3339)), out)
		return
	}
	// One ahead of the wall clock by more than the skew is a producer's
	// clock gone wrong: its emit_timestamp would be in the future.
	if de := p.clock.ahead("the input record", float64(m.Time.UnixMilli())/1000, out, maxClockSkew(p.cfg.MaxClockSkew)); de != nil {
		p.reject(m, de.Reason, de.Detail, out)
		return
	}
	if cap(p.arena)-len(p.arena) < len(r.UniqueID)*6+96 {
		p.arena = make([]byte, 0, max(arenaSize, len(r.UniqueID)*6+96))
	}
	start := len(p.arena)
	p.arena = wire.AppendShadow(p.arena, wire.Classify(r.Rating), r.UniqueID, m.Time.Unix(), r.Rating)
	out.Emit(kafka.Message{
		Topic: p.cfg.OutputTopic,
		Key:   r.UniqueID,
		Value: p.arena[start:len(p.arena):len(p.arena)],
		Time:  m.Time,
	})
}

func (p *shadowProcessor) reject(m *kafka.Message, reason wire.Reason, detail string, out *stream.Output) {
	if c, ok := p.dead[reason]; ok {
		c.Inc()
	}
	out.Emit(deadLetter(p.cfg.DeadLetterTopic, ShadowAgentName, m, reason, detail, p.cfg.MaxDeadLetterBytes))
}

// Rejected dead-letters the rating whose output Kafka refused for good.
func (p *shadowProcessor) Rejected(m kafka.Message, in *kafka.Message, cause error, out *stream.Output) {
	p.log.Error("output refused by kafka; dead-lettering its input", "topic", m.Topic, "bytes", len(m.Value), "err", cause)
	if c, ok := p.dead[wire.ReasonOutputRejected]; ok {
		c.Inc()
	}
	out.Emit(refusedDeadLetter(p.cfg.DeadLetterTopic, ShadowAgentName, m, in, wire.ReasonOutputRejected, cause, p.cfg.MaxDeadLetterBytes))
}
