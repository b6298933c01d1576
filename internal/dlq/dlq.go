package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/wire"
)

// Defaults for Config.
const (
	// DefaultTopic is the shadow agent's dead-letter topic.
	DefaultTopic = wire.RatingsDeadLetterTopic
	// DefaultBatchSize is how many records Replay writes per batch.
	DefaultBatchSize = 500
	// DefaultWriteTimeout bounds one batch's write, retries included.
	DefaultWriteTimeout = 30 * time.Second
)

// Config says which dead-letter topic to read and how to reach Kafka.
type Config struct {
	// Topic is the dead-letter topic. Default DefaultTopic.
	Topic string
	// Kafka is the cluster, with TLS and SASL.
	Kafka broker.Config
	// BatchSize is how many records Replay writes per batch. Default
	// DefaultBatchSize.
	BatchSize int
	// WriteTimeout bounds the write of one batch. Default
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
}

// WithDefaults returns c with its zero (and negative) fields set to the
// documented defaults.
func (c Config) WithDefaults() Config {
	c.Topic = cmp.Or(c.Topic, DefaultTopic)
	c.Kafka = c.Kafka.WithDefaults()
	c.BatchSize = cmp.Or(max(c.BatchSize, 0), DefaultBatchSize)
	c.WriteTimeout = cmp.Or(max(c.WriteTimeout, 0), DefaultWriteTimeout)
	return c
}

// Validate reports a setting that cannot work. It applies no defaults.
func (c Config) Validate() error {
	if err := broker.ValidTopic(c.Topic); err != nil {
		return fmt.Errorf("dlq: dead-letter topic: %w", err)
	}
	if c.BatchSize <= 0 || c.WriteTimeout <= 0 {
		return fmt.Errorf("dlq: batch size %d and write timeout %v must be positive", c.BatchSize, c.WriteTimeout)
	}
	return c.Kafka.Validate()
}

// ErrNoTopic is returned when a topic the call needs does not exist.
var ErrNoTopic = errors.New("no such topic")

// DLQ reads one dead-letter topic and replays its records.
type DLQ struct {
	cfg       Config
	client    *kafka.Client
	dialer    *kafka.Dialer
	transport *kafka.Transport
}

// New checks cfg and prepares the connections; it does no I/O.
func New(cfg Config) (*DLQ, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dialer, err := cfg.Kafka.Dialer()
	if err != nil {
		return nil, err
	}
	transport, err := cfg.Kafka.Transport()
	if err != nil {
		return nil, err
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Transport: transport, Timeout: 30 * time.Second}
	return &DLQ{cfg: cfg, client: client, dialer: dialer, transport: transport}, nil
}

// Topic returns the dead-letter topic d reads.
func (d *DLQ) Topic() string { return d.cfg.Topic }

// Close releases idle connections.
func (d *DLQ) Close() { d.transport.CloseIdleConnections() }

// span is the offsets of one partition a scan reads, [first, last).
type span struct {
	partition   int
	first, last int64
}

// partitions returns the partition ids of topic, or ErrNoTopic.
func (d *DLQ) partitions(ctx context.Context, topic string) ([]int, error) {
	ids, err := broker.PartitionIDs(ctx, d.client, topic)
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("topic %s: %w", topic, ErrNoTopic)
	}
	return ids, err
}

// spans returns the first and end offsets of every partition of the
// dead-letter topic, as they are now.
func (d *DLQ) spans(ctx context.Context) ([]span, error) {
	ids, err := d.partitions(ctx, d.cfg.Topic)
	if err != nil {
		return nil, err
	}
	got, err := broker.Spans(ctx, d.client, d.cfg.Topic, ids)
	if err != nil {
		return nil, err
	}
	out := make([]span, len(got))
	for i, g := range got {
		out[i] = span{partition: g.Partition, first: g.First, last: g.End}
	}
	return out, nil
}

// Scan passes to fn, in partition then offset order, every record of the
// dead-letter topic that sel matches, up to the end of each partition as
// it is when Scan starts. An error from fn ends the scan and is returned.
func (d *DLQ) Scan(ctx context.Context, sel Selection, fn func(Record) error) error {
	spans, err := d.spans(ctx)
	if err != nil {
		return err
	}
	return d.scan(ctx, spans, sel, fn)
}

func (d *DLQ) scan(ctx context.Context, spans []span, sel Selection, fn func(Record) error) error {
	for _, s := range spans {
		from, to, ok := sel.bounds(s.partition, s.first, s.last)
		if !ok {
			continue
		}
		err := d.read(ctx, s.partition, from, to, func(m kafka.Message) error {
			if r := FromMessage(m); sel.Match(r) {
				return fn(r)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// read passes the records of partition at offsets [from, to) to fn.
func (d *DLQ) read(ctx context.Context, partition int, from, to int64, fn func(kafka.Message) error) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: d.cfg.Kafka.Brokers, Topic: d.cfg.Topic, Partition: partition, Dialer: d.dialer,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("read %s/%d from %d: %w", d.cfg.Topic, partition, from, err)
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %s/%d at offset %d (reading up to %d): %w", d.cfg.Topic, partition, from, to, err)
		}
		if m.Offset >= to {
			return nil
		}
		if err := fn(m); err != nil {
			return err
		}
		if from = m.Offset + 1; from >= to {
			return nil
		}
	}
}

// Get reads the record at offset of partition.
func (d *DLQ) Get(ctx context.Context, partition int, offset int64) (Record, error) {
	spans, err := d.spans(ctx)
	if err != nil {
		return Record{}, err
	}
	for _, s := range spans {
		if s.partition != partition {
			continue
		}
		if offset < s.first || offset >= s.last {
			return Record{}, fmt.Errorf("%s/%d holds offsets %d to %d, not %d", d.cfg.Topic, partition, s.first, s.last-1, offset)
		}
		var rec Record
		found := false
		err := d.read(ctx, partition, offset, offset+1, func(m kafka.Message) error {
			rec, found = FromMessage(m), true
			return nil
		})
		if err != nil {
			return Record{}, err
		}
		if !found {
			return Record{}, fmt.Errorf("%s/%d has no record at offset %d", d.cfg.Topic, partition, offset)
		}
		return rec, nil
	}
	return Record{}, fmt.Errorf("%s has no partition %d", d.cfg.Topic, partition)
}
