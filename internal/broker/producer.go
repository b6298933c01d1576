package broker

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// Producer writes records synchronously, each acknowledged by every
// in-sync replica: one produce request per partition and size-bounded
// chunk, partitions in parallel, a partition's chunks in order. It places records as kafka-go's Writer with a
// Murmur2Balancer does (the Java client's partitioner), so keyed records go
// where any Kafka client puts them.
//
// It exists because kafka-go's Writer asks its transport for the topic's
// metadata once per record and copies it each time: 8% of the visits
// agents' CPU and a third of their allocations in a profile
// (bench/README.md). Producer asks once per topic and keeps the answer for
// MetadataTTL, or until a request fails.
//
// Failures are the caller's to retry: a call that fails returns
// kafka.WriteErrors with one entry per record, nil for those acknowledged,
// as the Writer does; records are never retried inside.
type Producer struct {
	client   *kafka.Client
	acks     kafka.RequiredAcks
	maxBytes int
	timeout  time.Duration
	ttl      time.Duration
	balancer kafka.Murmur2Balancer
	closer   io.Closer // the transport, when the Producer made it

	mu     sync.Mutex
	topics map[string]topicParts
}

type topicParts struct {
	ids []int
	at  time.Time
}

// Defaults of ProducerConfig.
const (
	// DefaultProduceMaxBytes is Kafka's default message.max.bytes: a
	// larger batch is refused whole by a broker with the default.
	DefaultProduceMaxBytes = 1 << 20
	// DefaultProduceTimeout bounds one WriteMessages call.
	DefaultProduceTimeout = 10 * time.Second
	// DefaultMetadataTTL is how long a topic's partition count is kept.
	DefaultMetadataTTL = 10 * time.Second
)

// ProducerConfig describes a Producer; zero fields take the defaults.
type ProducerConfig struct {
	// MaxBytes bounds one produce request's records (their keys, values
	// and headers). A single larger record is sent alone. Default
	// DefaultProduceMaxBytes.
	MaxBytes int
	// Timeout bounds one call. Default DefaultProduceTimeout.
	Timeout time.Duration
	// MetadataTTL is how long a topic's partition count is kept. Default
	// DefaultMetadataTTL.
	MetadataTTL time.Duration
}

// WithDefaults returns c with its zero (and negative) fields set to the
// documented defaults.
func (c ProducerConfig) WithDefaults() ProducerConfig {
	c.MaxBytes = cmp.Or(max(c.MaxBytes, 0), DefaultProduceMaxBytes)
	c.Timeout = cmp.Or(max(c.Timeout, 0), DefaultProduceTimeout)
	c.MetadataTTL = cmp.Or(max(c.MetadataTTL, 0), DefaultMetadataTTL)
	return c
}

// Validate reports a setting that cannot work; WithDefaults leaves none.
func (c ProducerConfig) Validate() error {
	if c.MaxBytes <= 0 || c.Timeout <= 0 || c.MetadataTTL <= 0 {
		return fmt.Errorf("producer: max bytes %d, timeout %v and metadata ttl %v must be positive", c.MaxBytes, c.Timeout, c.MetadataTTL)
	}
	return nil
}

// NewProducer returns a Producer for the cluster cfg describes, with
// RequireAll.
func NewProducer(cfg Config, pc ProducerConfig) (*Producer, error) {
	pc = pc.WithDefaults()
	if err := pc.Validate(); err != nil {
		return nil, err
	}
	t, err := cfg.Transport()
	if err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	return &Producer{
		client:   &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: t},
		acks:     kafka.RequireAll,
		maxBytes: pc.MaxBytes,
		timeout:  pc.Timeout,
		ttl:      pc.MetadataTTL,
		closer:   closerFunc(func() error { t.CloseIdleConnections(); return nil }),
		topics:   map[string]topicParts{},
	}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Close releases the Producer's idle connections.
func (p *Producer) Close() error { return p.closer.Close() }

// WriteMessages writes msgs, each to its Topic, and returns once every one
// is acknowledged, or kafka.WriteErrors saying which were not.
func (p *Producer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	g, err := p.group(ctx, msgs)
	if err != nil {
		return err
	}
	var errs kafka.WriteErrors // made on the first failure
	var mu sync.Mutex
	var wg sync.WaitGroup
	for d, dst := range g.dests {
		// A partition's chunks go one after the other, so the broker
		// appends them in order; once one fails, the rest are not sent,
		// so that a retry cannot put a record before one sent earlier.
		wg.Go(func() {
			var first error
			for _, chunk := range p.chunks(msgs, g.records(d)) {
				var err error
				if first == nil {
					err = p.produce(ctx, dst.topic, dst.partition, msgs, chunk)
					first = err
				} else {
					err = fmt.Errorf("not sent after an earlier record of %s/%d failed: %w", dst.topic, dst.partition, first)
				}
				if err == nil {
					continue
				}
				mu.Lock()
				if errs == nil {
					errs = make(kafka.WriteErrors, len(msgs))
				}
				for _, i := range chunk {
					errs[i] = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if errs == nil {
		return nil
	}
	return errs
}

// grouping is a call's records grouped by the partition they go to.
type grouping struct {
	// dests are the partitions, in the order of their first record.
	dests []dest
	// idx holds the records' indexes, grouped by dest in dests' order and
	// in call order within a dest; dest d's run ends at ends[d].
	idx, ends []int
}

type dest struct {
	topic     string
	partition int
}

// records returns the indexes of the records going to dests[d].
func (g grouping) records(d int) []int {
	start := 0
	if d > 0 {
		start = g.ends[d-1]
	}
	return g.idx[start:g.ends[d]]
}

// group places each record on its partition. It asks for a topic's
// partitions once per call (a call carries one or two topics: the output
// and the dead letters), and groups with a counting sort: no map, and the
// same few allocations whatever the call's size.
func (p *Producer) group(ctx context.Context, msgs []kafka.Message) (grouping, error) {
	type topicSlots struct {
		name string
		ids  []int
		slot []int // partition id → index in dests + 1; 0 for none yet
	}
	var topics []topicSlots
	var g grouping
	at := make([]int, 2*len(msgs)) // each record's dest, then the result
	for i := range msgs {
		topic := msgs[i].Topic
		if topic == "" {
			return grouping{}, fmt.Errorf("produce: record %d has no topic", i)
		}
		t := -1
		for j := range topics {
			if topics[j].name == topic {
				t = j
				break
			}
		}
		if t < 0 {
			ids, err := p.partitions(ctx, topic)
			if err != nil {
				return grouping{}, err
			}
			top := 0
			for _, id := range ids {
				top = max(top, id+1)
			}
			topics = append(topics, topicSlots{name: topic, ids: ids, slot: make([]int, top)})
			t = len(topics) - 1
		}
		ts := &topics[t]
		part := p.balancer.Balance(msgs[i], ts.ids...)
		if part < 0 || part >= len(ts.slot) {
			return grouping{}, fmt.Errorf("produce: record %d placed on partition %d of %s, which has %v", i, part, topic, ts.ids)
		}
		if ts.slot[part] == 0 {
			g.dests = append(g.dests, dest{topic, part})
			ts.slot[part] = len(g.dests)
		}
		at[i] = ts.slot[part] - 1
	}
	g.ends = make([]int, len(g.dests))
	for _, d := range at[:len(msgs)] {
		g.ends[d]++
	}
	for d := 1; d < len(g.ends); d++ {
		g.ends[d] += g.ends[d-1]
	}
	// Fill each run from its end backwards, walking the records backwards,
	// so each run keeps call order.
	g.idx = at[len(msgs):]
	fill := slices.Clone(g.ends)
	for i := len(msgs) - 1; i >= 0; i-- {
		d := at[i]
		fill[d]--
		g.idx[fill[d]] = i
	}
	return g, nil
}

// chunks cuts the records at idx into runs of at most maxBytes.
func (p *Producer) chunks(msgs []kafka.Message, idx []int) [][]int {
	var out [][]int
	start, size := 0, 0
	for j, i := range idx {
		n := recordBytes(&msgs[i])
		if j > start && size+n > p.maxBytes {
			out = append(out, idx[start:j])
			start, size = j, 0
		}
		size += n
	}
	return append(out, idx[start:])
}

// recordBytes estimates a record's size in a record batch.
func recordBytes(m *kafka.Message) int {
	n := len(m.Key) + len(m.Value) + 24
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + 4
	}
	return n
}

func (p *Producer) produce(ctx context.Context, topic string, partition int, msgs []kafka.Message, chunk []int) error {
	size := 4 + batchHeaderBytes
	for _, i := range chunk {
		size += recordBytes(&msgs[i])
	}
	// The request's record set is its size, then the batch.
	held := batchBuffers.Get().(*[]byte)
	buf := *held
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	buf = appendRecordBatch(buf[:4], msgs, chunk, time.Now().UnixMilli())
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	res, err := p.client.RawProduce(ctx, &kafka.RawProduceRequest{
		Topic: topic, Partition: partition, RequiredAcks: p.acks,
		RawRecords: protocol.RawRecordSet{Reader: bytes.NewReader(buf)},
	})
	if err == nil && res == nil {
		err = errors.New("no produce response")
	}
	if err == nil && res.Error != nil {
		err = res.Error
	}
	if err == nil {
		for _, rerr := range res.RecordErrors {
			err = rerr
			break
		}
	}
	if err != nil {
		// The partition may have moved or grown: ask again next time. The
		// buffer is not reused: a request given up on may still be being
		// written by the transport.
		p.forget(topic)
		return fmt.Errorf("produce %d records to %s/%d: %w", len(chunk), topic, partition, err)
	}
	// Answered, so written whole: the buffer can serve another request.
	*held = buf[:0]
	batchBuffers.Put(held)
	return nil
}

// batchBuffers holds the buffers of record batches acknowledged, for the
// next ones.
var batchBuffers = sync.Pool{New: func() any { return new([]byte) }}

// partitions returns topic's partition ids, asking Kafka when they are not
// known or older than the metadata TTL.
func (p *Producer) partitions(ctx context.Context, topic string) ([]int, error) {
	p.mu.Lock()
	tp, ok := p.topics[topic]
	p.mu.Unlock()
	if ok && time.Since(tp.at) < p.ttl {
		return tp.ids, nil
	}
	ids, err := PartitionIDs(ctx, p.client, topic)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.topics[topic] = topicParts{ids: ids, at: time.Now()}
	p.mu.Unlock()
	return ids, nil
}

func (p *Producer) forget(topic string) {
	p.mu.Lock()
	delete(p.topics, topic)
	p.mu.Unlock()
}

var _ interface {
	WriteMessages(context.Context, ...kafka.Message) error
} = (*Producer)(nil)
