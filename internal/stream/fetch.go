package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/backoff"
)

// fetched is one fetch response: its records, in offset order, and the
// partition's high watermark when it was answered.
type fetched struct {
	msgs          []kafka.Message
	highWatermark int64
}

// fetcher reads one partition from its leader, one fetch response ahead of
// the partition goroutine, and hands it over whole: a channel operation a
// response, not a record. kafka-go's Reader hands over each record through
// a channel and resets the connection's deadline for each, which cost the
// visits agents a fifth of their CPU.
//
// It retries for as long as it runs: a lost leader or connection is
// re-dialled with backoff, a fetch that times out is sent again, an offset
// past the end waits for records. Records removed by retention before they
// were read are skipped, and said so at error level.
type fetcher struct {
	dialer    *kafka.Dialer
	brokers   []string
	topic     string
	partition int
	maxBytes  int
	maxWait   time.Duration
	retry     backoff.Config
	log       *slog.Logger
	// replay, when positive, moves a start at kafka.LastOffset back to the
	// first record written at most replay before the leader is reached.
	replay time.Duration
	// failed, when set, is told of every failure before its retry.
	failed func(error)
	// empty hands over the empty answers to a caught-up partition too.
	empty bool

	out  chan fetched
	done chan struct{}

	// hint is the record count of the last response, to size the next.
	hint int

	mu   sync.Mutex
	conn *kafka.Conn // the connection in use, closed to interrupt a fetch
	stop bool
}

// fetchTimeout bounds reading one response beyond the broker's own wait.
const fetchTimeout = 10 * time.Second

// startFetcher starts reading topic's partition from offset (or
// kafka.FirstOffset / kafka.LastOffset) until ctx ends; Close waits for it.
func startFetcher(ctx context.Context, f *fetcher, offset int64) *fetcher {
	// Unbuffered: a partition holds the response it processes and the one
	// the fetcher has read ahead, no more.
	f.out = make(chan fetched)
	f.done = make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.stop = true
		if f.conn != nil {
			_ = f.conn.Close()
		}
	})
	go func() {
		defer close(f.done)
		defer stopWatch()
		f.run(ctx, offset)
	}()
	return f
}

// wait blocks until the fetcher has ended (after its context did).
func (f *fetcher) wait() { <-f.done }

func (f *fetcher) run(ctx context.Context, offset int64) {
	var conn *kafka.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	failures := 0
	fail := func(what string, err error) {
		if conn != nil {
			_ = conn.Close()
			conn = nil
		}
		failures++
		if ctx.Err() == nil {
			f.log.Warn("fetch failed; retrying", "op", what, "offset", offset, "attempt", failures, "err", err)
			if f.failed != nil {
				f.failed(err)
			}
		}
		backoff.Sleep(ctx, f.retry.Delay(failures))
	}
	for ctx.Err() == nil {
		if conn == nil {
			c, start, err := f.dial(ctx, offset)
			if err != nil {
				fail("connect to the partition leader", err)
				continue
			}
			conn, offset = c, start
		}
		res, err := f.fetch(conn, offset)
		switch {
		case err == nil:
			if failures > 0 {
				f.log.Info("fetch recovered", "offset", offset, "attempts", failures+1)
			}
			failures = 0
		case errors.Is(err, kafka.OffsetOutOfRange):
			first, last, oerr := readOffsets(conn)
			if oerr != nil {
				fail("read the partition's offsets", oerr)
				continue
			}
			if offset < first {
				f.log.Error("records removed by retention before they were read; skipping them", "from", offset, "to", first, "records", first-offset)
				offset = first
				_, _ = conn.Seek(offset, kafka.SeekAbsolute|kafka.SeekDontCheck)
				continue
			}
			if offset < last {
				continue
			}
			// Past the end: wait for records.
			backoff.Sleep(ctx, f.maxWait)
			continue
		case errors.Is(err, kafka.RequestTimedOut):
			// An empty wait: kafka-go reports the broker's empty answer
			// for a caught-up partition so, and leaves the connection
			// usable (its own Reader asks again on it, as here).
			if !f.empty {
				continue
			}
			res = fetched{highWatermark: res.highWatermark}
		case isTimeout(err):
			// No answer within the deadline: ask again on a new
			// connection, and tell whoever watches the reader.
			_ = conn.Close()
			conn = nil
			if f.failed != nil {
				f.failed(err)
			}
			continue
		default:
			fail("fetch", err)
			continue
		}
		if len(res.msgs) > 0 {
			offset = res.msgs[len(res.msgs)-1].Offset + 1
		}
		select {
		case f.out <- res:
		case <-ctx.Done():
			return
		}
	}
}

// dial connects to the partition's leader, trying each broker in turn, and
// positions the connection at offset, resolving kafka.FirstOffset and
// kafka.LastOffset and moving past records already removed.
func (f *fetcher) dial(ctx context.Context, offset int64) (*kafka.Conn, int64, error) {
	var errs []error
	for _, b := range f.brokers {
		conn, err := f.dialer.DialLeader(ctx, "tcp", b, f.topic, f.partition)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		first, last, err := readOffsets(conn)
		if err != nil {
			_ = conn.Close()
			errs = append(errs, err)
			continue
		}
		switch {
		case offset == kafka.FirstOffset:
			offset = first
		case offset == kafka.LastOffset && f.replay > 0:
			if offset, err = f.replayStart(conn, last); err != nil {
				_ = conn.Close()
				errs = append(errs, err)
				continue
			}
		case offset == kafka.LastOffset:
			offset = last
		case offset < first:
			f.log.Error("records removed by retention before they were read; skipping them", "from", offset, "to", first, "records", first-offset)
			offset = first
		}
		if _, err := conn.Seek(offset, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
			_ = conn.Close()
			errs = append(errs, err)
			continue
		}
		f.mu.Lock()
		if f.stop {
			f.mu.Unlock()
			_ = conn.Close()
			return nil, 0, context.Canceled
		}
		f.conn = conn
		f.mu.Unlock()
		return conn, offset, nil
	}
	return nil, 0, fmt.Errorf("dial the leader of %s/%d: %w", f.topic, f.partition, errors.Join(errs...))
}

// replayStart returns the offset of the first record written at most
// f.replay ago, or last (the end offset, read before this lookup, so that a
// record written in between is read either way) when there is none or
// Kafka definitely refuses the lookup. Other errors (Kafka unreachable)
// are returned, to be retried.
func (f *fetcher) replayStart(conn *kafka.Conn, last int64) (int64, error) {
	since := time.Now().Add(-f.replay)
	if err := conn.SetDeadline(time.Now().Add(fetchTimeout)); err != nil {
		return 0, err
	}
	offset, err := conn.ReadOffset(since)
	_ = conn.SetDeadline(time.Time{})
	var ke kafka.Error
	switch {
	case err == nil && offset >= 0:
		f.log.Info("reading from the replay start", "since", since.UTC().Format(time.RFC3339), "offset", offset)
		return offset, nil
	case err == nil: // no record since then
		f.log.Info("reading from the replay start", "since", since.UTC().Format(time.RFC3339), "offset", last)
		return last, nil
	case errors.As(err, &ke) && !ke.Temporary():
		f.log.Warn("cannot find the offset of the replay start: reading from the end", "since", since, "err", err)
		return last, nil
	}
	return 0, fmt.Errorf("find the offset of %s/%d at %s: %w", f.topic, f.partition, since.UTC().Format(time.RFC3339), err)
}

// fetch sends one fetch request at offset and reads its whole response.
func (f *fetcher) fetch(conn *kafka.Conn, offset int64) (fetched, error) {
	if err := conn.SetReadDeadline(time.Now().Add(f.maxWait + fetchTimeout)); err != nil {
		return fetched{}, err
	}
	batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: f.maxBytes, MaxWait: f.maxWait})
	res := fetched{highWatermark: batch.HighWaterMark(), msgs: make([]kafka.Message, 0, max(f.hint, 16))}
	for {
		m, err := batch.ReadMessage()
		if err != nil {
			break
		}
		res.msgs = append(res.msgs, m)
	}
	f.hint = len(res.msgs) + len(res.msgs)/4
	err := batch.Close()
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if err != nil && len(res.msgs) > 0 {
		// What was read is good; the error shows again on the next fetch.
		err = nil
	}
	return res, err
}

func readOffsets(conn *kafka.Conn) (first, last int64, err error) {
	if err := conn.SetDeadline(time.Now().Add(fetchTimeout)); err != nil {
		return 0, 0, err
	}
	first, last, err = conn.ReadOffsets()
	_ = conn.SetDeadline(time.Time{})
	return first, last, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
