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
		}
		sleep(ctx, f.retry.Delay(failures))
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
			sleep(ctx, f.maxWait)
			continue
		case errors.Is(err, kafka.RequestTimedOut) || isTimeout(err):
			// An empty wait, as the broker or the deadline timed it: ask
			// again on the same connection if it is still usable.
			if isTimeout(err) {
				_ = conn.Close()
				conn = nil
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
