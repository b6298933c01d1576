package dlq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/broker"
)

// ReplayOptions tune one Replay.
type ReplayOptions struct {
	// DryRun checks the selection and reports what would be sent, and sends
	// nothing.
	DryRun bool
	// OnRecord, when set, is called for each selected record with the
	// message Replay sends (or would send) for it, or skipped true when it
	// is not sent (truncated).
	OnRecord func(r Record, m kafka.Message, skipped bool)
}

// Summary counts what a Replay did.
type Summary struct {
	// Selected counts the records the selection matched.
	Selected int `json:"selected"`
	// Sent counts the records handed to Kafka (0 in a dry run).
	Sent int `json:"sent"`
	// Acknowledged counts the records every in-sync replica acknowledged.
	Acknowledged int `json:"acknowledged"`
	// Skipped counts the selected records that were not sent because their
	// value was truncated when dead-lettered.
	Skipped int `json:"skipped"`
	// Topics counts the records sent (or, in a dry run, to send) per
	// destination topic.
	Topics map[string]int `json:"topics"`
	// DryRun is set when nothing was meant to be sent.
	DryRun bool `json:"dry_run"`
}

// String is "selected=N sent=N acknowledged=N skipped=N to=topic:N,...",
// with dry_run=true for a dry run.
func (s Summary) String() string {
	names := slices.Sorted(maps.Keys(s.Topics))
	to := make([]string, len(names))
	for i, t := range names {
		to[i] = fmt.Sprintf("%s:%d", t, s.Topics[t])
	}
	out := fmt.Sprintf("selected=%d sent=%d acknowledged=%d skipped=%d", s.Selected, s.Sent, s.Acknowledged, s.Skipped)
	if len(to) > 0 {
		out += " to=" + strings.Join(to, ",")
	}
	if s.DryRun {
		out += " dry_run=true"
	}
	return out
}

// replayable reports why r cannot be replayed into a topic other than
// dlqTopic, or nil.
func replayable(r Record, dlqTopic string) error {
	switch {
	case r.Origin == "":
		return fmt.Errorf("dead letter %s has no %s header: where it came from is unknown, so it cannot be replayed (leave it out of the selection)", r.ID(), "dlq.topic")
	case r.Origin == dlqTopic:
		return fmt.Errorf("dead letter %s names the dead-letter topic itself as its origin; replaying it would only dead-letter it again", r.ID())
	}
	if err := broker.ValidTopic(r.Origin); err != nil {
		return fmt.Errorf("dead letter %s: dlq.topic: %w", r.ID(), err)
	}
	return nil
}

// Replay sends the records sel matches back to their dlq.topic; see the
// package doc for what is sent and what is checked first. The Summary is
// valid also when an error is returned: it says what was sent and
// acknowledged before the error.
func (d *DLQ) Replay(ctx context.Context, sel Selection, opts ReplayOptions) (Summary, error) {
	sum := Summary{Topics: map[string]int{}, DryRun: opts.DryRun}
	if err := sel.Validate(); err != nil {
		return sum, err
	}
	spans, err := d.spans(ctx)
	if err != nil {
		return sum, err
	}
	// First pass: check the whole selection before sending anything.
	var bad error
	err = d.scan(ctx, spans, sel, func(r Record) error {
		sum.Selected++
		if r.Truncated > 0 {
			sum.Skipped++
			return nil
		}
		if err := replayable(r, d.cfg.Topic); err != nil {
			bad = err
			return err
		}
		sum.Topics[r.Origin]++
		return nil
	})
	if bad != nil {
		return Summary{Topics: map[string]int{}, DryRun: opts.DryRun}, fmt.Errorf("replay: nothing sent: %w", bad)
	}
	if err != nil {
		return Summary{Topics: map[string]int{}, DryRun: opts.DryRun}, fmt.Errorf("replay: nothing sent: %w", err)
	}
	counts := map[string]int{}
	for topic, n := range sum.Topics {
		parts, err := d.partitions(ctx, topic)
		if err != nil {
			return Summary{Topics: map[string]int{}, DryRun: opts.DryRun}, fmt.Errorf("replay: nothing sent: %d selected records name %w", n, err)
		}
		counts[topic] = len(parts)
	}

	w := &kafka.Writer{
		Addr:                   kafka.TCP(d.cfg.Kafka.Brokers...),
		Transport:              d.transport,
		RequiredAcks:           kafka.RequireAll,
		Balancer:               originBalancer{},
		BatchSize:              d.cfg.BatchSize,
		BatchBytes:             16 << 20,
		BatchTimeout:           time.Millisecond,
		WriteTimeout:           d.cfg.WriteTimeout,
		AllowAutoTopicCreation: false,
	}
	defer w.Close()

	// Second pass: the same offsets, sent in batches.
	batch := make([]kafka.Message, 0, d.cfg.BatchSize)
	flush := func() error {
		if len(batch) == 0 || opts.DryRun {
			batch = batch[:0]
			return nil
		}
		sum.Sent += len(batch)
		err := w.WriteMessages(ctx, batch...)
		var werrs kafka.WriteErrors
		switch {
		case err == nil:
			sum.Acknowledged += len(batch)
		case errors.As(err, &werrs):
			var first error
			for _, e := range werrs {
				if e == nil {
					sum.Acknowledged++
				} else if first == nil {
					first = e
				}
			}
			err = fmt.Errorf("%d of a batch of %d not acknowledged: %w", werrs.Count(), len(batch), first)
		}
		batch = batch[:0]
		if err != nil {
			return fmt.Errorf("replay: write to %s: %w", strings.Join(slices.Sorted(maps.Keys(counts)), ","), err)
		}
		return nil
	}
	err = d.scan(ctx, spans, sel, func(r Record) error {
		m := r.Replay()
		if r.Truncated > 0 {
			if opts.OnRecord != nil {
				opts.OnRecord(r, m, true)
			}
			return nil
		}
		if m.Partition >= counts[m.Topic] {
			m.Partition = -1 // the topic has fewer partitions now: hash the key
		}
		if opts.OnRecord != nil {
			opts.OnRecord(r, m, false)
		}
		batch = append(batch, m)
		if len(batch) < d.cfg.BatchSize {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return sum, fmt.Errorf("%w (acknowledged %d of the %d sent)", err, sum.Acknowledged, sum.Sent)
	}
	return sum, nil
}

// originBalancer sends a replayed record to the partition its input came
// from (Message.Partition, set by Record.Replay) when the topic has it,
// else by the murmur2 hash of its key, as domination's producers do.
type originBalancer struct{}

// Balance picks the partition for msg.
func (originBalancer) Balance(msg kafka.Message, partitions ...int) int {
	for _, p := range partitions {
		if p == msg.Partition {
			return p
		}
	}
	return (&kafka.Murmur2Balancer{}).Balance(msg, partitions...)
}
