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

	"github.com/domination/domination/internal/stream"
	"github.com/domination/domination/metrics"
	"github.com/domination/domination/wire"
)

// Runtime is what every agent shares inside one worker process.
type Runtime struct {
	// Brokers are the bootstrap addresses.
	Brokers []string
	// Dialer connects the agents' consumer groups.
	Dialer *kafka.Dialer
	// Admin reads and writes commit metadata and creates topics.
	Admin *kafka.Client
	// Writer produces every agent's output; it must wait for all in-sync
	// replicas (RequireAll), since an input's offset is committed once its
	// outputs are acknowledged.
	Writer Writer
	// Metrics is the worker's registry; the agents label theirs with their
	// names.
	Metrics *metrics.Metrics
	// Log receives the agents' logs.
	Log *slog.Logger
	// Now is the wall clock the agents judge timestamps against; nil means
	// time.Now.
	Now func() time.Time
}

// Writer produces records; the worker's shared producer is one.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Batching bounds one produce-and-commit cycle of an agent: the records
// read, processed, produced and committed together.
type Batching struct {
	// MaxBatch caps the records in one cycle. Default DefaultMaxBatch.
	MaxBatch int
	// MaxWait is how long a cycle keeps gathering after its first record:
	// the latency batching adds. Default DefaultMaxWait.
	MaxWait time.Duration
}

// Defaults of Batching.
const (
	DefaultMaxBatch = stream.DefaultMaxBatch
	DefaultMaxWait  = stream.DefaultMaxWait
)

// WithDefaults returns b with its zero (or negative) fields set to the
// defaults.
func (b Batching) WithDefaults() Batching {
	b.MaxBatch = cmp.Or(max(b.MaxBatch, 0), DefaultMaxBatch)
	b.MaxWait = cmp.Or(max(b.MaxWait, 0), DefaultMaxWait)
	return b
}

// Topic is a topic an agent reads or writes, with the partitions it is
// created with when it does not exist.
type Topic struct {
	Name       string
	Partitions int
}

// stage builds the runner of one agent stage: the consumer group group
// reading topic, a processor per partition from factory.
func (rt Runtime) stage(name, topic, group string, b Batching, factory stream.Factory) (*stream.Runner, error) {
	sc := stream.Config{
		Name: name, Brokers: rt.Brokers, Topic: topic, GroupID: group,
		MaxBatch: b.MaxBatch, MaxWait: b.MaxWait,
	}
	runner, err := stream.New(sc, rt.Dialer, rt.Admin, rt.Writer, factory, rt.Metrics, rt.Log)
	if err != nil {
		return nil, fmt.Errorf("%s agent: %w", name, err)
	}
	return runner, nil
}

// runStages runs every stage until ctx ends or one of them returns: the
// stages of one pipeline live and die together.
func runStages(ctx context.Context, stages ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(stages))
	for _, run := range stages {
		go func() {
			err := run(ctx)
			cancel()
			errc <- err
		}()
	}
	var errs []error
	for range stages {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// deadCounters returns the dead-letter counter of each reason for agent,
// created up front so that every reason shows on /metrics from the start.
func deadCounters(m *metrics.Metrics, agent string, reasons []wire.Reason) map[wire.Reason]prometheus.Counter {
	dead := make(map[wire.Reason]prometheus.Counter, len(reasons))
	for _, r := range reasons {
		dead[r] = m.DeadLettered.WithLabelValues(agent, string(r))
	}
	return dead
}

// arenaSize is the size of the buffers the agents encode their outputs
// into. Emitted values are sub-slices of an arena and must stay valid until
// produced, so a full arena is replaced, never reused: the old one lives
// until its records are written.
const arenaSize = 256 << 10

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

// minTime is wire.MinUnix, the earliest time a record may carry.
var minTime = time.Unix(wire.MinUnix, 0)

// wallClock is the clock the agents stamp and judge records by: the
// injected Runtime.Now when set (tests), and otherwise the runtime's one
// reading per batch (stream.Output.Now: time.Now per record was 4% of the
// shadow agent's CPU and 3.5% of the visits agents'). That reading is
// milliseconds old, which can only make a timestamp look further ahead, so
// a timestamp it finds ahead is judged again on a fresh reading: the
// verdict is the clock's (but for a clock set back during the batch).
type wallClock struct {
	// now is the wall clock (the batch's reading when nil).
	now func() time.Time
}

// reading is the time to stamp the outputs of the batch out collects.
func (c wallClock) reading(out *stream.Output) time.Time {
	if c.now != nil {
		return c.now()
	}
	return out.Now()
}

// ahead is checkAhead(what, ts, now, skew) on the clock now.
func (c wallClock) ahead(what string, ts float64, out *stream.Output, skew time.Duration) *wire.DecodeError {
	de := checkAhead(what, ts, c.reading(out), skew)
	if de != nil && c.now == nil {
		de = checkAhead(what, ts, time.Now(), skew)
	}
	return de
}

// checkAhead refuses a timestamp (unix seconds) more than skew ahead of now.
func checkAhead(what string, ts float64, now time.Time, skew time.Duration) *wire.DecodeError {
	limit := now.Add(skew)
	if ts <= float64(limit.UnixMilli())/1000 {
		return nil
	}
	return &wire.DecodeError{Reason: wire.ReasonFutureTimestamp, Detail: fmt.Sprintf("%s stamped %s is more than %s ahead of the wall clock (%s)",
		what, wire.FormatSeconds(ts), skew, now.UTC().Format(time.RFC3339Nano))}
}
