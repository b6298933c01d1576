package producer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/broker"
)

const (
	// DrainTimeout bounds how long a run that is stopping (ctx ended, or
	// too many failures) waits for its writes in flight.
	DrainTimeout = 10 * time.Second
	// MaxFailedBatches is how many batches in a row may fail entirely
	// before a run gives up.
	MaxFailedBatches = 5

	progressEvery = time.Second
	// maxLag is how far a paced run may fall behind its schedule and
	// catch up; beyond it the schedule restarts from now instead of
	// bursting.
	maxLag = time.Second
)

// NewWriter returns the writer that RunRatings and RunVisits expect, over
// brokers through t (the connection's TLS and SASL): every
// message acknowledged by all in-sync replicas (RequireAll), keys hashed
// with murmur2 as the Java client does (so a key lands on the partition
// other Kafka clients would choose), synchronous, no automatic topic
// creation, no compression. The topic is set per message, so the writer
// can serve either generator. The caller closes it.
//
// A partition's batch goes out when it holds DefaultBatchSize messages or
// 4 MiB, or 5 ms after it opened. The size matches the generators' default
// BatchSize on purpose: with InFlight calls in flight, a partition's batch
// then fills from them and leaves at once, where a larger writer batch
// would wait out the 5 ms on every call (about 3x slower, measured). A
// caller that changes the config's BatchSize should set the writer's
// BatchSize to the same value.
func NewWriter(brokers []string, t *kafka.Transport) *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Balancer:               &kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           5 * time.Millisecond,
		BatchSize:              DefaultBatchSize,
		BatchBytes:             4 << 20,
		WriteTimeout:           10 * time.Second,
		Transport:              t,
		AllowAutoTopicCreation: false,
	}
}

// Sending is how a run hands its messages to the writer; RatingsConfig and
// VisitsConfig embed it.
type Sending struct {
	// BatchSize is the most messages per WriteMessages call. Default
	// DefaultBatchSize; at a set rate a batch holds at most a tenth of a second's worth (and
	// at least one message), so messages go out smoothly. Set the writer's
	// BatchSize to match (see NewWriter).
	BatchSize int
	// InFlight is how many WriteMessages calls may run at once. Default
	// DefaultInFlight. Above 1, messages reach their partitions in nearly, not exactly, the
	// order they were generated (the set sent is the same).
	InFlight int
}

// WithDefaults returns s with its zero fields set to the documented
// defaults.
func (s Sending) WithDefaults() Sending {
	s.BatchSize = cmp.Or(s.BatchSize, DefaultBatchSize)
	s.InFlight = cmp.Or(s.InFlight, DefaultInFlight)
	return s
}

// Validate reports a negative setting. It applies no defaults.
func (s Sending) Validate() error {
	if s.BatchSize < 0 {
		return fmt.Errorf("batch size %d is negative", s.BatchSize)
	}
	if s.InFlight < 0 {
		return fmt.Errorf("in-flight %d is negative", s.InFlight)
	}
	return nil
}

// validateRun reports the first problem, in what both generators check
// alike, of a run of what: its topic, its messages per second and its
// count (named rateName and countName, as their flags are), then s.
func (s Sending) validateRun(what, topic, rateName string, rate float64, countName string, count int64) error {
	if err := broker.ValidTopic(topic); err != nil {
		return fmt.Errorf("%s topic: %w", what, err)
	}
	if math.IsNaN(rate) || rate < 0 {
		return fmt.Errorf("%s %s %v is not a non-negative number of messages per second", what, rateName, rate)
	}
	if count < 0 {
		return fmt.Errorf("%s %s %d is negative", what, countName, count)
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("%s %w", what, err)
	}
	return nil
}

// Summary is what a run has done so far, or did.
type Summary struct {
	// Kind is "ratings" or "visits".
	Kind string
	// Sent counts the messages handed to the writer.
	Sent int64
	// Acked counts the messages Kafka acknowledged.
	Acked int64
	// Failed counts the messages whose write failed. Sent-Acked-Failed
	// are still in flight.
	Failed int64
	// Elapsed is the time since the run started.
	Elapsed time.Duration
	// Seed is the seed of the run's stream, the one given or the one
	// picked at random.
	Seed int64
	// Done is set on the last progress call and in the returned Summary.
	Done bool
}

// Rate returns the acknowledged messages per second over Elapsed.
func (s Summary) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Acked) / s.Elapsed.Seconds()
}

// String describes s in one line, such as "acknowledged 100000 of 100000
// ratings in 1.92s (52083/s), seed 42".
func (s Summary) String() string {
	kind := s.Kind
	if kind == "" {
		kind = "messages"
	}
	out := fmt.Sprintf("acknowledged %d of %d %s in %s (%.0f/s)", s.Acked, s.Sent, kind, s.Elapsed.Round(10*time.Millisecond), s.Rate())
	if s.Failed > 0 {
		out += ", " + strconv.FormatInt(s.Failed, 10) + " failed"
	}
	return out + ", seed " + strconv.FormatInt(s.Seed, 10)
}

// Progress receives a run's Summary about every second and once at the
// end (with Done set), always from the goroutine that called the run.
type Progress func(s Summary)

// encoder appends one message value to dst and says where its key is
// within dst and what time the message carries.
type encoder interface {
	appendNext(dst []byte) (buf []byte, keyStart, keyEnd int, t time.Time)
}

// batch is one WriteMessages call's messages. Keys and values are slices
// of buf; a batch is refilled only after its write has returned.
type batch struct {
	msgs  []kafka.Message
	buf   []byte
	spans []span
}

type span struct{ start, keyStart, keyEnd int }

func (b *batch) fill(enc encoder, n int, topic string) {
	b.buf, b.spans, b.msgs = b.buf[:0], b.spans[:0], b.msgs[:0]
	for range n {
		start := len(b.buf)
		var ks, ke int
		var t time.Time
		b.buf, ks, ke, t = enc.appendNext(b.buf)
		b.spans = append(b.spans, span{start, ks, ke})
		b.msgs = append(b.msgs, kafka.Message{Topic: topic, Time: t})
	}
	// buf may have moved while growing: point into it only now.
	for i, sp := range b.spans {
		end := len(b.buf)
		if i+1 < len(b.spans) {
			end = b.spans[i+1].start
		}
		b.msgs[i].Key = b.buf[sp.keyStart:sp.keyEnd:sp.keyEnd]
		b.msgs[i].Value = b.buf[sp.start:end:end]
	}
}

type result struct {
	b   *batch
	err error
}

// unpaced turns a rate of +Inf (the flag value "inf") into 0, run's
// "as fast as possible".
func unpaced(rate float64) float64 {
	if math.IsInf(rate, 1) {
		return 0
	}
	return rate
}

// run is one RunRatings or RunVisits call. Only the calling goroutine
// touches it; each write runs in its own goroutine and hands its batch
// back over results.
type run struct {
	kind     string
	topic    string
	w        *kafka.Writer
	enc      encoder
	rate     float64 // per second; 0 means unpaced
	count    int64   // 0 means unlimited
	send     Sending
	seed     int64
	progress Progress
	log      *slog.Logger

	sum       Summary
	started   time.Time
	failedRow int   // batches in a row that failed entirely
	cut       int64 // messages whose write the drain deadline abandoned
}

func (r *run) run(ctx context.Context) (Summary, error) {
	r.started = time.Now()
	r.sum = Summary{Kind: r.kind, Seed: r.seed}
	msgTopic := r.topic
	switch r.w.Topic {
	case "":
	case r.topic:
		msgTopic = "" // the writer sets it; kafka-go rejects both
	default:
		return r.summary(true), fmt.Errorf("produce %s to %s: the writer is bound to topic %s", r.kind, r.topic, r.w.Topic)
	}

	// Writes outlive ctx: once the run stops they get DrainTimeout more.
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer wcancel()
	results := make(chan result, r.send.InFlight)
	var (
		free     []*batch
		inflight int
		stopping bool
		drain    *time.Timer
		runErr   error
		ctxDone  = ctx.Done()
		timer    = time.NewTimer(time.Hour)
		tick     = time.NewTicker(progressEvery)
		pace     = pacer{start: r.started}
	)
	timer.Stop()
	defer timer.Stop()
	defer tick.Stop()
	stop := func() {
		if !stopping {
			stopping = true
			drain = time.AfterFunc(DrainTimeout, wcancel)
		}
	}
	done := func(res result) {
		inflight--
		if err := r.account(res); err != nil && runErr == nil {
			runErr = err
			stop()
		}
		if wctx.Err() == nil {
			// The write has ended for kafka-go too: its buffers are free.
			free = append(free, res.b)
		}
	}

	for {
		canSend := !stopping && (r.count == 0 || r.sum.Sent < r.count) && inflight < r.send.InFlight
		if !canSend && inflight == 0 {
			break
		}
		var (
			n      int
			timerC <-chan time.Time
		)
		if canSend {
			n = r.nextBatchSize()
			if wait := r.wait(&pace, n); wait > 0 {
				timer.Reset(wait)
				timerC = timer.C
			} else {
				// Time to send, once whatever else is ready is handled.
				select {
				case res := <-results:
					done(res)
					continue
				case <-tick.C:
					r.report(false)
					continue
				case <-ctxDone:
					ctxDone = nil
					stop()
					continue
				default:
				}
				var b *batch
				if k := len(free); k > 0 {
					b, free = free[k-1], free[:k-1]
				} else {
					b = &batch{}
				}
				b.fill(r.enc, n, msgTopic)
				r.sum.Sent += int64(n)
				inflight++
				go func() {
					results <- result{b: b, err: r.w.WriteMessages(wctx, b.msgs...)}
				}()
				continue
			}
		}
		select {
		case res := <-results:
			done(res)
		case <-tick.C:
			r.report(false)
		case <-ctxDone:
			ctxDone = nil
			stop()
		case <-timerC:
		}
	}

	if drain != nil && !drain.Stop() && r.cut > 0 && runErr == nil {
		runErr = fmt.Errorf("produce %s to %s: %d messages in flight not acknowledged within %s (they may still be written)",
			r.kind, r.topic, r.cut, DrainTimeout)
	}
	s := r.summary(true)
	if r.progress != nil {
		r.progress(s)
	}
	r.log.Info("produced "+r.kind, "topic", r.topic, "sent", s.Sent, "acked", s.Acked, "failed", s.Failed,
		"elapsed", s.Elapsed, "seed", s.Seed)
	return s, runErr
}

// nextBatchSize is how many messages the next WriteMessages call carries:
// up to batchSize, at a set rate at most a tenth of a second's worth (at
// least one), and no more than the count leaves.
func (r *run) nextBatchSize() int {
	n := r.send.BatchSize
	if r.rate > 0 && r.rate/10 < float64(n) {
		n = max(1, int(r.rate/10))
	}
	if r.count > 0 && r.count-r.sum.Sent < int64(n) {
		n = int(r.count - r.sum.Sent)
	}
	return n
}

// wait returns how long to wait before sending the next n messages: until
// the last of them is due. A run more than maxLag behind starts its
// schedule afresh instead of bursting to catch up.
func (r *run) wait(p *pacer, n int) time.Duration {
	if r.rate <= 0 {
		return 0
	}
	last := r.sum.Sent + int64(n) - 1
	now := time.Now()
	due := p.due(last, r.rate)
	if now.Sub(due) > maxLag {
		*p = pacer{start: now, base: last}
		return 0
	}
	return due.Sub(now)
}

// pacer schedules message k at start + (k-base)/rate.
type pacer struct {
	start time.Time
	base  int64
}

func (p pacer) due(k int64, rate float64) time.Time {
	return p.start.Add(time.Duration(float64(k-p.base) / rate * float64(time.Second)))
}

// account adds a finished write to the summary. It returns an error when
// MaxFailedBatches batches in a row have failed entirely.
func (r *run) account(res result) error {
	n := len(res.b.msgs)
	failed, cause := n, res.err
	var werr kafka.WriteErrors
	switch {
	case res.err == nil:
		failed = 0
	case errors.As(res.err, &werr) && len(werr) == n:
		failed = werr.Count()
		for _, e := range werr {
			if e != nil {
				cause = e
				break
			}
		}
	}
	r.sum.Acked += int64(n - failed)
	r.sum.Failed += int64(failed)
	if failed == 0 {
		r.failedRow = 0
		return nil
	}
	if errors.Is(res.err, context.Canceled) {
		// Cut off by DrainTimeout: kafka-go may still write them.
		r.cut += int64(n)
		r.log.Warn("write abandoned at the drain deadline", "topic", r.topic, "messages", n)
		return nil
	}
	r.log.Warn("write failed", "topic", r.topic, "failed", failed, "of", n, "err", cause)
	if failed < n {
		r.failedRow = 0
		return nil
	}
	r.failedRow++
	if r.failedRow >= MaxFailedBatches {
		return fmt.Errorf("produce %s to %s: %d batches in a row failed: %w", r.kind, r.topic, r.failedRow, cause)
	}
	return nil
}

func (r *run) summary(done bool) Summary {
	s := r.sum
	s.Elapsed = time.Since(r.started)
	s.Done = done
	return s
}

func (r *run) report(done bool) {
	if r.progress != nil {
		r.progress(r.summary(done))
	}
}

// randomSeed picks a non-zero seed.
func randomSeed() int64 {
	for {
		if s := rand.Int64(); s != 0 {
			return s
		}
	}
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
