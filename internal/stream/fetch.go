package stream

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
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
	// frame is the buffer the response was read into, which msgs alias,
	// for recycleFrame once nothing refers to them (nil from kafka-go).
	frame []byte
}

// fetcher reads one partition from its leader, one fetch response ahead of
// the partition goroutine, and hands it over whole: a channel operation a
// response, not a record. kafka-go's Reader hands over each record through
// a channel and resets the connection's deadline for each, which cost the
// visits agents a fifth of their CPU. It speaks the fetch itself too
// (records.go): kafka-go's Batch reads each record's fields through a
// bufio.Reader and allocates each key and value, another quarter of it.
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
	// free holds record slices handed back by the partition once it has
	// copied their records into its batches, for the next responses.
	free chan []kafka.Message
	// frames holds response buffers handed back likewise, once the
	// batches holding their records are produced.
	frames chan []byte

	// hint is the record count of the last response, to size the next.
	hint int
	// leaderDialer is dialer with a DialFunc that keeps the connection it
	// made in dialed, so that fetches can use it without kafka-go.
	leaderDialer *kafka.Dialer
	dialed       net.Conn
	// request is the buffer fetch requests are written in, reused.
	request []byte
	id      int32

	mu   sync.Mutex
	conn *kafka.Conn // the connection in use, closed to interrupt a fetch
	stop bool
}

// leader is a connection to a partition's leader: kafka-go's, for
// everything but fetches, and the network connection under it, for
// fetches. kafka-go reads exactly one response to each request it sends
// and sends none unasked, so no byte of a fetch response is ever left in
// its buffer, nor one of its responses in a fetch's.
type leader struct {
	*kafka.Conn
	raw     net.Conn
	version int16 // of the fetch requests
}

// minRecycledFrame is the smallest response buffer worth reusing.
const minRecycledFrame = 16 << 10

// frameSlack is the room a response buffer keeps beyond the fetch's
// maxBytes, for the response's own fields around the records.
const frameSlack = 4 << 10

// fetchTimeout bounds reading one response beyond the broker's own wait.
const fetchTimeout = 10 * time.Second

// startFetcher starts reading topic's partition from offset (or
// kafka.FirstOffset / kafka.LastOffset) until ctx ends; Close waits for it.
func startFetcher(ctx context.Context, f *fetcher, offset int64) *fetcher {
	// Unbuffered: a partition holds the response it processes and the one
	// the fetcher has read ahead, no more.
	f.out = make(chan fetched)
	f.done = make(chan struct{})
	f.free = make(chan []kafka.Message, 2)
	f.frames = make(chan []byte, 4)
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
	var conn *leader
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
		res, next, err := f.fetch(conn, offset)
		switch {
		case err == nil:
			if failures > 0 {
				f.log.Info("fetch recovered", "offset", offset, "attempts", failures+1)
			}
			failures = 0
		case errors.Is(err, kafka.OffsetOutOfRange):
			first, last, oerr := readOffsets(conn.Conn)
			if oerr != nil {
				fail("read the partition's offsets", oerr)
				continue
			}
			if offset < first {
				f.log.Error("records removed by retention before they were read; skipping them", "from", offset, "to", first, "records", first-offset)
				offset = first
				continue
			}
			if offset < last {
				continue
			}
			// Past the end: wait for records.
			backoff.Sleep(ctx, f.maxWait)
			continue
		case errors.Is(err, kafka.RequestTimedOut):
			// An empty wait: the broker's empty answer for a caught-up
			// partition, reported so as kafka-go does; the connection
			// stays usable and is asked again.
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
		offset = next
		select {
		case f.out <- res:
		case <-ctx.Done():
			return
		}
	}
}

// dial connects to the partition's leader, trying each broker in turn, and
// resolves offset: kafka.FirstOffset, kafka.LastOffset, and an offset of
// records already removed.
func (f *fetcher) dial(ctx context.Context, offset int64) (*leader, int64, error) {
	var errs []error
	for _, b := range f.brokers {
		conn, err := f.dialLeader(ctx, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		first, last, err := readOffsets(conn.Conn)
		if err != nil {
			_ = conn.Close()
			errs = append(errs, err)
			continue
		}
		switch {
		case offset == kafka.FirstOffset:
			offset = first
		case offset == kafka.LastOffset && f.replay > 0:
			if offset, err = f.replayStart(conn.Conn, last); err != nil {
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
		f.mu.Lock()
		if f.stop {
			f.mu.Unlock()
			_ = conn.Close()
			return nil, 0, context.Canceled
		}
		f.conn = conn.Conn
		f.mu.Unlock()
		return conn, offset, nil
	}
	return nil, 0, fmt.Errorf("dial the leader of %s/%d: %w", f.topic, f.partition, errors.Join(errs...))
}

// dialLeader looks the partition's leader up through broker, connects to
// it and chooses the fetch version to speak.
func (f *fetcher) dialLeader(ctx context.Context, broker string) (*leader, error) {
	p, err := f.dialer.LookupPartition(ctx, "tcp", broker, f.topic, f.partition)
	if err != nil {
		return nil, err
	}
	if f.leaderDialer == nil {
		f.leaderDialer = rawDialer(f.dialer, func(c net.Conn) { f.dialed = c })
	}
	f.dialed = nil
	conn, err := f.leaderDialer.DialPartition(ctx, "tcp", broker, p)
	if err != nil {
		return nil, err
	}
	if f.dialed == nil {
		_ = conn.Close()
		return nil, errors.New("connect to the partition leader: no connection was dialled")
	}
	l := &leader{Conn: conn, raw: f.dialed}
	if err := l.negotiate(); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return l, nil
}

// negotiate chooses the fetch version from the broker's API versions.
func (l *leader) negotiate() error {
	if err := l.SetDeadline(time.Now().Add(fetchTimeout)); err != nil {
		return err
	}
	versions, err := l.ApiVersions()
	_ = l.SetDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("read the broker's API versions: %w", err)
	}
	for _, v := range versions {
		if v.ApiKey == fetchAPIKey {
			l.version, err = fetchVersion(v.MinVersion, v.MaxVersion)
			return err
		}
	}
	return errors.New("the broker does not answer fetches")
}

// rawDialer returns a copy of d that dials as d does, TLS handshake
// included, and tells dialed of each connection it makes, over which
// kafka-go then authenticates (SASL) and speaks.
func rawDialer(d *kafka.Dialer, dialed func(net.Conn)) *kafka.Dialer {
	c := *d
	c.TLS = nil
	c.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		dial := d.DialFunc
		if dial == nil {
			dial = (&net.Dialer{LocalAddr: d.LocalAddr, FallbackDelay: d.FallbackDelay, KeepAlive: d.KeepAlive}).DialContext
		}
		conn, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		if d.TLS != nil {
			cfg := d.TLS
			if cfg.ServerName == "" {
				// As kafka-go does: the host dialled, without its port.
				cfg = cfg.Clone()
				cfg.ServerName = address
				if i := strings.LastIndex(address, ":"); i >= 0 {
					cfg.ServerName = address[:i]
				}
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = conn.Close()
				return nil, err
			}
			conn = tc
		}
		dialed(conn)
		return conn, nil
	}
	return &c
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

// fetch sends one fetch request at offset and reads its whole response
// into one buffer, which the records it returns alias. It returns the
// offset to fetch next, and the high watermark with a partition error.
func (f *fetcher) fetch(conn *leader, offset int64) (fetched, int64, error) {
	res, err := f.fetchOnce(conn, offset)
	if err != nil {
		return res.fetched, offset, fmt.Errorf("fetch %s/%d at offset %d: %w", f.topic, f.partition, offset, err)
	}
	if len(res.msgs) > 0 {
		f.hint = len(res.msgs) + len(res.msgs)/4
	}
	if len(res.msgs) == 0 && res.next == offset && res.highWatermark <= offset {
		// Caught up: kafka-go reports the broker's empty answer so.
		return res.fetched, offset, kafka.RequestTimedOut
	}
	return res.fetched, res.next, nil
}

func (f *fetcher) fetchOnce(conn *leader, offset int64) (fetchedPartition, error) {
	body, frame, err := f.roundTrip(conn, offset)
	if err != nil {
		return fetchedPartition{}, err
	}
	var msgs []kafka.Message
	select {
	case msgs = <-f.free:
	default:
		msgs = make([]kafka.Message, 0, max(f.hint, 16))
	}
	res, err := parseFetch(body, conn.version, f.topic, int32(f.partition), offset, msgs)
	if n := len(res.msgs); n < len(msgs) && (n == 0 || &res.msgs[0] == &msgs[0]) {
		// The records of an earlier response past this one's keep no
		// buffer of theirs alive.
		clear(msgs[n:])
	}
	if err == nil && len(res.msgs) == 0 {
		// Nothing refers to an empty answer's buffers: the next answer
		// can have them.
		f.recycle(msgs[:0])
		f.recycleFrame(frame)
	} else {
		res.frame = frame
	}
	return res, err
}

// recycle hands a response's record slice back for the next responses,
// once nothing refers to its records any more. The next response
// overwrites them, and fetchOnce clears those it does not.
func (f *fetcher) recycle(msgs []kafka.Message) {
	select {
	case f.free <- msgs:
	default:
	}
}

// roundTrip sends a fetch request at offset and returns the body of its
// response, in a buffer of its own.
func (f *fetcher) roundTrip(conn *leader, offset int64) (body, frame []byte, err error) {
	if err := conn.raw.SetDeadline(time.Now().Add(f.maxWait + fetchTimeout)); err != nil {
		return nil, nil, err
	}
	defer conn.raw.SetDeadline(time.Time{})
	f.id++
	req := fetchRequest{
		version: conn.version, id: f.id, clientID: cmp.Or(f.dialer.ClientID, kafka.DefaultClientID),
		topic: f.topic, partition: int32(f.partition), offset: offset,
		maxBytes: int32(min(f.maxBytes, math.MaxInt32)), maxWait: f.maxWait,
	}
	f.request = req.appendTo(f.request[:0])
	if _, err := conn.raw.Write(f.request); err != nil {
		return nil, nil, err
	}
	var buf []byte
	select {
	case buf = <-f.frames:
	default:
	}
	id, body, frame, err := readFrame(conn.raw, buf, f.maxBytes+frameSlack)
	if err != nil {
		return nil, nil, err
	}
	if id != req.id {
		return nil, nil, fmt.Errorf("%w: correlation id %d, want %d", errMalformed, id, req.id)
	}
	return body, frame, nil
}

// recycleFrame hands a response buffer back for the next responses, once
// nothing refers to the records read from it. A small one is left to the
// collector: it would not hold the next records.
func (f *fetcher) recycleFrame(b []byte) {
	if cap(b) < minRecycledFrame {
		return
	}
	select {
	case f.frames <- b:
	default:
	}
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
