package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/stream"
)

// source feeds counts to the hub until ctx ends; Run's is Kafka, tests use
// their own.
type source func(ctx context.Context, emit func(Count)) error

// Run reads the counts topic and broadcasts every count until ctx ends,
// then closes every client with 1001 (going away), waits for their
// goroutines and returns nil. Kafka being down is logged and retried, never
// returned. Run may be called once.
func (f *Feed) Run(ctx context.Context) error {
	return f.run(ctx, f.readKafka)
}

func (f *Feed) run(ctx context.Context, src source) error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("feed: Run called twice")
	}
	defer f.hub.shutdown()
	err := src(ctx, f.receive)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// receive handles one count read from the topic.
func (f *Feed) receive(c Count) {
	f.m.FeedReceived.Inc()
	// Logged at debug: the original app logged every count at info, but
	// that is a line per key per window, noise at a thousand keys.
	var store any
	if c.StoreID != nil {
		store = *c.StoreID
	}
	f.log.Debug("active visitors", "account", c.AccountID, "store", store, "window", [2]int64{c.Start, c.End}, "count", c.Count)
	f.hub.publish(c)
}

// readKafka reads partition 0 of the topic with the stream runtime's
// partition reader: without a consumer group, so that every worker sees
// every count, starting Config.Replay ago, and retrying a lost leader or
// connection with backoff. Every fetch response is a success for Ready, an
// empty one included: the broker answers a caught-up reader empty every
// MaxWait, at most ReadyWindow/3, so an idle topic keeps Ready passing.
// Every failure fails Ready until the next response.
func (f *Feed) readKafka(ctx context.Context, emit func(Count)) error {
	cfg := stream.ReaderConfig{
		Brokers: f.cfg.Brokers, Dialer: f.cfg.Dialer, Topic: f.cfg.Topic,
		Replay:   f.cfg.Replay,
		MaxBytes: 1 << 20,
		MaxWait:  min(500*time.Millisecond, f.cfg.ReadyWindow/3),
		Log:      f.log.With("topic", f.cfg.Topic),
	}
	return stream.ReadPartition(ctx, cfg, func(records []kafka.Message, _ int64) {
		f.health.fetched()
		for i := range records {
			f.decode(&records[i], emit)
		}
	}, f.health.failed)
}

// decode emits the count m holds, or counts and skips m when it holds none.
func (f *Feed) decode(m *kafka.Message, emit func(Count)) {
	c, err := decodeCount(m.Value)
	if err != nil {
		f.m.FeedInvalid.Inc()
		f.log.Warn("skipping invalid count", "topic", f.cfg.Topic, "offset", m.Offset, "err", err)
		return
	}
	emit(c)
}

// health is what Ready knows of the reader.
type health struct {
	mu      sync.Mutex
	lastOK  time.Time
	lastErr error
	errAt   time.Time
}

// fetched records a successful fetch or caught-up check.
func (h *health) fetched() {
	h.mu.Lock()
	h.lastOK = time.Now()
	h.mu.Unlock()
}

// failed records a failed fetch or check.
func (h *health) failed(err error) {
	h.mu.Lock()
	h.lastErr, h.errAt = err, time.Now()
	h.mu.Unlock()
}

// check passes when the last event was a success no older than window.
func (h *health) check(now time.Time, window time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.lastOK.IsZero() && h.lastErr == nil:
		return errors.New("not read yet")
	case h.errAt.After(h.lastOK):
		return fmt.Errorf("last fetch failed: %w", h.lastErr)
	case now.Sub(h.lastOK) > window:
		return fmt.Errorf("no successful fetch for %s", now.Sub(h.lastOK).Round(time.Second))
	}
	return nil
}
