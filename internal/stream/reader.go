package stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/backoff"
)

// ReaderConfig describes a partition read with ReadPartition: outside any
// consumer group, so that every reader sees every record, and committing
// nothing.
type ReaderConfig struct {
	// Brokers are the bootstrap addresses. Required.
	Brokers []string
	// Dialer connects to the partition's leader. Default kafka.DefaultDialer.
	Dialer *kafka.Dialer
	// Topic is the topic read. Required.
	Topic string
	// Partition is the partition read. Default 0.
	Partition int
	// Replay is how far back reading starts: at the first record written
	// at most Replay before the partition's leader is first reached, or at
	// the end when there is none or Kafka refuses the lookup for good.
	// Zero starts at the end.
	Replay time.Duration
	// MaxBytes caps one fetch response. Default DefaultFetchMaxBytes.
	MaxBytes int
	// MaxWait is how long the broker may hold a fetch of a caught-up
	// partition before answering it empty. Default DefaultReaderMaxWait.
	MaxWait time.Duration
	// Retry bounds the backoff between failed attempts.
	Retry backoff.Config
	// Log receives the reader's warnings. Default: discarded.
	Log *slog.Logger
}

// DefaultReaderMaxWait is ReaderConfig.MaxWait's default: a Runner's fetch
// wait.
const DefaultReaderMaxWait = fetchMaxWait

// WithDefaults returns c with its zero fields set to the documented defaults.
func (c ReaderConfig) WithDefaults() ReaderConfig {
	if c.Dialer == nil {
		c.Dialer = kafka.DefaultDialer
	}
	c.MaxBytes = cmp.Or(max(c.MaxBytes, 0), DefaultFetchMaxBytes)
	c.MaxWait = cmp.Or(max(c.MaxWait, 0), DefaultReaderMaxWait)
	c.Retry = c.Retry.WithDefaults()
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a missing or impossible setting.
func (c ReaderConfig) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("stream: read a partition: Brokers are required")
	case c.Topic == "":
		return errors.New("stream: read a partition: Topic is required")
	case c.Partition < 0:
		return fmt.Errorf("stream: read a partition: partition %d is negative", c.Partition)
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("stream: read a partition: %w", err)
	}
	return nil
}

// ReadPartition reads cfg's partition until ctx ends, with the fetcher a
// Runner's partitions use and its retries: a lost leader or connection is
// re-dialled with backoff for as long as ctx lasts. It calls got, on its own
// goroutine and in offset order, with every fetch response: its records and
// the partition's high watermark when the broker answered, an empty
// response included (a caught-up partition is answered empty every
// MaxWait). It calls failed, when not nil and from the fetcher's goroutine,
// with every failure before it is retried. It returns nil once ctx has
// ended and the fetcher has, or an error for a config that cannot work.
func ReadPartition(ctx context.Context, cfg ReaderConfig, got func(records []kafka.Message, highWatermark int64), failed func(error)) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	src := startFetcher(ctx, &fetcher{
		dialer: cfg.Dialer, brokers: cfg.Brokers, topic: cfg.Topic, partition: cfg.Partition,
		maxBytes: cfg.MaxBytes, maxWait: cfg.MaxWait, retry: cfg.Retry, log: cfg.Log,
		replay: cfg.Replay, failed: failed, empty: true,
	}, kafka.LastOffset)
	defer src.wait()
	for {
		select {
		case res := <-src.out:
			got(res.msgs, res.highWatermark)
		case <-ctx.Done():
			return nil
		}
	}
}
