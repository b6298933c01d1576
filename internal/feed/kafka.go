package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/backoff"
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
	f.m.received.Inc()
	// Logged at debug: the original app logged every count at info, but
	// that is a line per key per window, noise at a thousand keys.
	var store any
	if c.StoreID != nil {
		store = *c.StoreID
	}
	f.log.Debug("active visitors", "account", c.AccountID, "store", store, "window", [2]int64{c.Start, c.End}, "count", c.Count)
	f.hub.publish(c)
}

// readKafka reads partition 0 of the topic, without a consumer group so
// that every worker sees every count, starting Config.Replay ago. When the
// reader reports an error (kafka-go retries a few times on its own first),
// it is closed and a new one resumes at the next offset after a backoff.
func (f *Feed) readKafka(ctx context.Context, emit func(Count)) error {
	next := int64(-1) // the next offset to read; -1 until the first record
	failures := 0
	for {
		err := f.readFrom(ctx, &next, func() {
			if failures > 0 {
				f.log.Info("read active visitors: recovered", "topic", f.cfg.Topic, "attempts", failures+1)
				failures = 0
			}
		}, emit)
		if ctx.Err() != nil {
			return nil
		}
		f.health.failed(err)
		failures++
		wait := backoff.Config{}.Delay(failures)
		f.log.Warn("read active visitors: reconnecting", "topic", f.cfg.Topic, "attempt", failures, "wait", wait.Round(time.Millisecond), "err", err)
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// readFrom reads with a new reader from *next, or from Config.Replay ago
// when *next is -1, until a fetch fails or ctx ends. ok is called on every
// fetch that returns a record.
func (f *Feed) readFrom(ctx context.Context, next *int64, ok func(), emit func(Count)) error {
	cfg := f.cfg
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:         cfg.Brokers,
		Topic:           cfg.Topic,
		Partition:       0,
		Dialer:          cfg.Dialer,
		MinBytes:        1,
		MaxBytes:        1 << 20,
		MaxWait:         500 * time.Millisecond,
		ReadLagInterval: -1,
		Logger:          kafka.LoggerFunc(func(string, ...any) {}),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			f.log.Debug("kafka reader", "topic", cfg.Topic, "msg", fmt.Sprintf(msg, args...))
		}),
	})
	defer func() { _ = reader.Close() }()

	if *next >= 0 {
		if err := reader.SetOffset(*next); err != nil {
			return fmt.Errorf("set offset of %s to %d: %w", cfg.Topic, *next, err)
		}
	} else if err := f.position(ctx, reader); err != nil {
		return err
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	pctx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	wg.Go(func() { f.probe(pctx, reader) })

	for {
		m, err := reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch from %s: %w", cfg.Topic, err)
		}
		*next = m.Offset + 1
		f.health.fetched()
		ok()
		c, err := decodeCount(m.Value)
		if err != nil {
			f.m.invalid.Inc()
			f.log.Warn("skipping invalid count", "topic", cfg.Topic, "offset", m.Offset, "err", err)
			continue
		}
		emit(c)
	}
}

// position sets the reader at the first record written since Replay ago,
// or, when there is none, at the end offset read before that lookup, an
// absolute offset: kafka-go's LastOffset would be resolved only when the
// reader starts, skipping what was written in between. It is
// reader.SetOffsetAt with that race closed. A definite refusal (not a
// temporary Kafka error) falls back to the end of the topic; other errors
// (Kafka unreachable) are returned, to be retried.
func (f *Feed) position(ctx context.Context, reader *kafka.Reader) error {
	since := time.Now().Add(-f.cfg.Replay)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	offset, err := f.offsetAt(pctx, since)
	var ke kafka.Error
	switch {
	case err == nil:
		f.log.Info("feed reading", "topic", f.cfg.Topic, "since", since.UTC().Format(time.RFC3339), "offset", offset)
		return reader.SetOffset(offset)
	case errors.As(err, &ke) && !ke.Temporary():
		f.log.Warn("cannot find the offset of the replay start: reading from the end", "topic", f.cfg.Topic, "since", since, "err", err)
		return reader.SetOffset(kafka.LastOffset)
	}
	return fmt.Errorf("find the offset of %s at %s: %w", f.cfg.Topic, since.UTC().Format(time.RFC3339), err)
}

// offsetAt returns the offset of the first record of partition 0 written at
// or after t, or the partition's end offset when there is none.
func (f *Feed) offsetAt(ctx context.Context, t time.Time) (int64, error) {
	dialer := f.cfg.Dialer
	if dialer == nil {
		dialer = kafka.DefaultDialer
	}
	var err error
	for _, b := range f.cfg.Brokers {
		var conn *kafka.Conn
		conn, err = dialer.DialLeader(ctx, "tcp", b, f.cfg.Topic, 0)
		if err != nil {
			continue
		}
		if d, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(d)
		}
		// The end first: a record written after it is read either way.
		end, err := conn.ReadLastOffset()
		if err != nil {
			_ = conn.Close()
			return 0, err
		}
		offset, err := conn.ReadOffset(t)
		_ = conn.Close()
		if err != nil {
			return 0, err
		}
		if offset < 0 { // no record since t
			offset = end
		}
		return offset, nil
	}
	return 0, err
}

// probe checks every ReadyWindow/3 that the partition's leader answers and
// whether the reader is caught up, so that an idle topic keeps Ready
// passing and an unreachable one fails it.
func (f *Feed) probe(ctx context.Context, reader *kafka.Reader) {
	every := f.cfg.ReadyWindow / 3
	check := func() {
		cctx, cancel := context.WithTimeout(ctx, every)
		defer cancel()
		lag, err := reader.ReadLag(cctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			f.health.failed(err)
		case lag <= 0:
			f.health.fetched()
		}
	}
	check()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
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
