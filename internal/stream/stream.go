package stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/backoff"
	"github.com/domination/domination/metrics"
)

// Output collects the records a Processor emits for one batch.
type Output struct {
	msgs []kafka.Message
	// from holds, for each record in msgs, the index in the batch of the
	// input being processed when it was emitted, or -1 (emitted by a tick).
	from []int
	cur  int
	// now is the wall clock when the runtime began the batch (or the tick).
	now time.Time
}

// Emit queues m for production. m.Topic must be set. The Output keeps m
// until the batch is produced; m's byte slices must not be reused by the
// caller before then.
func (o *Output) Emit(m kafka.Message) {
	o.msgs = append(o.msgs, m)
	o.from = append(o.from, o.cur)
}

// Len returns how many records are queued.
func (o *Output) Len() int { return len(o.msgs) }

// Now returns the wall clock as the runtime read it when it began the batch
// (or the tick) this Output collects, one reading for all its records; an
// Output the runtime did not fill (a test's) reads the clock each time.
// A batch takes milliseconds, so the reading is that much behind the clock
// at most.
func (o *Output) Now() time.Time {
	if o.now.IsZero() {
		return time.Now()
	}
	return o.now
}

func (o *Output) reset() {
	clear(o.msgs)
	o.msgs = o.msgs[:0]
	o.from = o.from[:0]
	o.now = time.Time{}
}

// Processor turns input records into output records for one partition. It
// is called from a single goroutine.
type Processor interface {
	// Process handles one input record, emitting what it causes into out.
	// It must not fail: bad input is dead-lettered through out.
	Process(m *kafka.Message, out *Output)
	// Rejected is called with an output record m that Kafka refused for
	// good (for example too large) and the input record that caused it (nil
	// for a record emitted by Tick), so the processor can dead-letter that
	// input instead. It may emit replacements into out.
	Rejected(m kafka.Message, in *kafka.Message, cause error, out *Output)
}

// Ticker is implemented by processors that emit on wall-clock time (closing
// idle windows). Tick is called between batches, at most every
// Config.TickInterval, and only when the partition has had no record for
// TickInterval and its last fetch found it caught up.
type Ticker interface {
	Tick(now time.Time, out *Output)
}

// Committer is implemented by processors that hold state. The offset to
// commit may then trail the next unread one (to the first record of the
// oldest open window), and the commit carries metadata the processor needs
// to rebuild its state when the partition is assigned again (it comes back
// in Partition.Metadata). The runtime commits min(next, offset).
type Committer interface {
	Commit(next int64) (offset int64, metadata string)
}

// Closer is implemented by processors that hold resources: Close is called
// once, from the partition's goroutine, when the partition is revoked or the
// runner stops, after the last batch. The processor must release its gauges
// and memory there; it is not used again.
type Closer interface {
	Close()
}

// Partition is what a Factory is told about a partition it is assigned.
type Partition struct {
	Topic string
	ID    int
	// Offset is where consumption starts: the committed offset, or the
	// Config.StartOffset sentinel when the group has none.
	Offset int64
	// Metadata is what the last Committer commit stored with the offset
	// ("" when none).
	Metadata string
}

// Factory makes the Processor for one assigned partition. It is called at
// every generation for every partition assigned.
type Factory func(p Partition) Processor

// Defaults of Config.
const (
	// DefaultStartOffset starts a partition without a committed offset at
	// its first record.
	DefaultStartOffset = kafka.FirstOffset
	DefaultMaxBatch    = 4096
	DefaultMaxWait     = 20 * time.Millisecond
	// DefaultFetchMaxBytes is 256 KiB: a response's records cost about as
	// much again as its bytes (a kafka.Message each), and a worker holds
	// two responses per partition of every agent. 512 KiB was no faster
	// and cost 10-15 MB of peak RSS in the visits benchmark.
	DefaultFetchMaxBytes     = 256 << 10
	DefaultSessionTimeout    = 10 * time.Second
	DefaultRebalanceTimeout  = 20 * time.Second
	DefaultHeartbeatInterval = 2 * time.Second
	DefaultDrainTimeout      = 10 * time.Second
	DefaultTickInterval      = time.Second
)

// Config describes one agent's consumption.
type Config struct {
	// Name labels the agent in logs and metrics. Required.
	Name string
	// Brokers are the bootstrap addresses. Required.
	Brokers []string
	// Topic is the input topic. Required.
	Topic string
	// GroupID is the consumer group. Required.
	GroupID string
	// StartOffset is where a partition without a committed offset starts:
	// kafka.FirstOffset or kafka.LastOffset. Default DefaultStartOffset.
	StartOffset int64
	// MaxBatch caps the records in one produce-and-commit cycle. Default
	// DefaultMaxBatch.
	MaxBatch int
	// MaxWait is how long a batch keeps gathering after its first record.
	// It bounds the latency added by batching. Default DefaultMaxWait.
	MaxWait time.Duration
	// FetchMaxBytes caps one fetch response per partition; a partition
	// holds at most two (one being processed, one read ahead). A record
	// batch larger than it is still fetched, alone. Default
	// DefaultFetchMaxBytes.
	FetchMaxBytes int
	// SessionTimeout and RebalanceTimeout are the consumer group's. A
	// stopped worker's partitions move after SessionTimeout. Defaults
	// DefaultSessionTimeout and DefaultRebalanceTimeout.
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// HeartbeatInterval is the consumer group's. Default
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// DrainTimeout bounds finishing the current batch once the runner
	// stops or the generation ends: writes and commits still failing or
	// blocked then are cancelled. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// TickInterval is how often a Ticker processor is ticked. Default
	// DefaultTickInterval.
	TickInterval time.Duration
	// Retry bounds the backoff between failed produce, commit, offset read
	// or join attempts. Defaults as backoff.Config's.
	Retry backoff.Config
}

// WithDefaults returns c with its zero (and negative) fields set to the
// documented defaults.
func (c Config) WithDefaults() Config {
	c.StartOffset = cmp.Or(c.StartOffset, DefaultStartOffset)
	c.MaxBatch = cmp.Or(max(c.MaxBatch, 0), DefaultMaxBatch)
	c.MaxWait = cmp.Or(max(c.MaxWait, 0), DefaultMaxWait)
	c.FetchMaxBytes = cmp.Or(max(c.FetchMaxBytes, 0), DefaultFetchMaxBytes)
	c.SessionTimeout = cmp.Or(max(c.SessionTimeout, 0), DefaultSessionTimeout)
	c.RebalanceTimeout = cmp.Or(max(c.RebalanceTimeout, 0), DefaultRebalanceTimeout)
	c.HeartbeatInterval = cmp.Or(max(c.HeartbeatInterval, 0), DefaultHeartbeatInterval)
	c.DrainTimeout = cmp.Or(max(c.DrainTimeout, 0), DefaultDrainTimeout)
	c.TickInterval = cmp.Or(max(c.TickInterval, 0), DefaultTickInterval)
	c.Retry = c.Retry.WithDefaults()
	return c
}

// Validate reports a missing or impossible setting. It applies no
// defaults.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("stream: Name is required")
	case len(c.Brokers) == 0:
		return errors.New("stream: Brokers are required")
	case c.Topic == "":
		return errors.New("stream: Topic is required")
	case c.GroupID == "":
		return errors.New("stream: GroupID is required")
	case c.StartOffset != kafka.FirstOffset && c.StartOffset != kafka.LastOffset && c.StartOffset != 0:
		return errors.New("stream: StartOffset must be kafka.FirstOffset or kafka.LastOffset")
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	return nil
}

// Writer is the part of *kafka.Writer the runtime uses; tests substitute
// failing writers.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Runner consumes one topic in a consumer group. Make it with New and call
// Run.
type Runner struct {
	cfg    Config
	dialer *kafka.Dialer
	client *kafka.Client
	// own is the transport of a client the runner made itself, closed when
	// Run returns.
	own     *kafka.Transport
	writer  Writer
	factory Factory
	log     *slog.Logger

	consumed, committed, produceErrs, commitErrs, rebalances prometheus.Counter
	partitions                                               prometheus.Gauge
	batches                                                  prometheus.Observer
	lag                                                      *prometheus.GaugeVec
	produced                                                 *prometheus.CounterVec

	mu    sync.Mutex
	owned map[int]bool
	// commitMu lets one partition commit at a time: concurrent commits on
	// the coordinator connection spin while they wait for their response
	// (a quarter of the CPU in profiles); queued on a mutex they sleep
	// instead.
	commitMu sync.Mutex
}

// New returns a Runner; it starts nothing until Run. client speaks to the
// group coordinator (joining, heartbeats, offsets and commit metadata); when
// nil, the runner makes one with the dialer's client id, dial timeout, TLS
// and SASL settings.
func New(cfg Config, dialer *kafka.Dialer, client *kafka.Client, w Writer, factory Factory, m *metrics.Metrics, log *slog.Logger) (*Runner, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if factory == nil || w == nil {
		return nil, errors.New("stream: a Factory and a Writer are required")
	}
	var own *kafka.Transport
	if client == nil {
		own = &kafka.Transport{DialTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MetadataTTL: 10 * time.Second}
		if dialer != nil {
			own.ClientID, own.TLS, own.SASL = dialer.ClientID, dialer.TLS, dialer.SASLMechanism
			if dialer.Timeout > 0 {
				own.DialTimeout = dialer.Timeout
			}
		}
		client = &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: own}
	}
	name := cfg.Name
	return &Runner{
		cfg: cfg, dialer: dialer, client: client, own: own, writer: w, factory: factory,
		log:         log.With("agent", name, "topic", cfg.Topic, "group", cfg.GroupID),
		consumed:    m.Consumed.WithLabelValues(name),
		committed:   m.Committed.WithLabelValues(name),
		produceErrs: m.ProduceErrors.WithLabelValues(name),
		commitErrs:  m.CommitErrors.WithLabelValues(name),
		rebalances:  m.Rebalances.WithLabelValues(name),
		partitions:  m.Partitions.WithLabelValues(name),
		batches:     m.Batches.WithLabelValues(name),
		lag:         m.Lag.MustCurryWith(prometheus.Labels{"agent": name}),
		produced:    m.Produced.MustCurryWith(prometheus.Labels{"agent": name}),
		owned:       map[int]bool{},
	}, nil
}

// Owned returns the partitions this runner currently consumes.
func (r *Runner) Owned() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, 0, len(r.owned))
	for p := range r.owned {
		out = append(out, p)
	}
	return out
}

// Run joins the group and consumes until ctx ends, then drains, leaves the
// group and returns nil. A broker that cannot be reached is retried with
// backoff, logged at each attempt, until ctx ends. Every goroutine Run
// starts has ended when it returns.
func (r *Runner) Run(ctx context.Context) error {
	m := &member{r: r}
	defer func() {
		m.leave()
		r.partitions.Set(0)
		if r.own != nil {
			r.own.CloseIdleConnections()
		}
	}()
	failures := 0
	for ctx.Err() == nil {
		gen, err := m.join(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			r.log.Warn("join consumer group generation", "err", err, "attempt", failures)
			backoff.Sleep(ctx, r.cfg.Retry.Delay(failures))
			continue
		}
		failures = 0
		r.rebalances.Inc()
		r.runGeneration(ctx, m, gen)
	}
	return nil
}

// runGeneration consumes the generation's partitions, one goroutine each,
// until the generation ends or root does, and returns when every goroutine
// it started has ended.
func (r *Runner) runGeneration(root context.Context, m *member, gen *generation) {
	gen.ctx, gen.end = context.WithCancelCause(root)
	defer gen.end(nil)
	r.partitions.Set(float64(len(gen.assigned)))
	r.log.Info("joined generation", "generation", gen.id, "member", gen.memberID, "leader", gen.leader, "partitions", gen.assigned)

	// Heartbeats go on while the partitions drain after a stop, so that
	// their last commits still belong to a live generation.
	hctx, stopHeartbeats := context.WithCancel(context.Background())
	var background sync.WaitGroup
	background.Go(func() { m.heartbeat(hctx, gen) })
	if gen.leader {
		background.Go(func() { m.watchPartitions(gen.ctx, gen) })
	}
	var parts sync.WaitGroup
	for _, id := range gen.assigned {
		parts.Go(func() { r.consume(gen, id) })
	}
	<-gen.ctx.Done()
	parts.Wait()
	stopHeartbeats()
	background.Wait()
	r.partitions.Set(0)
}

// fetchCommitted reads the partition's committed offset and metadata, retrying
// with backoff until it succeeds or ctx ends: a processor that rebuilds its
// state from the metadata must never start from empty state because a read
// failed.
func (r *Runner) fetchCommitted(ctx context.Context, id int, log *slog.Logger) (offset int64, meta string, ok bool) {
	for attempt := 1; ; attempt++ {
		fctx, cancel := context.WithTimeout(ctx, r.cfg.SessionTimeout)
		res, err := r.client.OffsetFetch(fctx, &kafka.OffsetFetchRequest{GroupID: r.cfg.GroupID, Topics: map[string][]int{r.cfg.Topic: {id}}})
		cancel()
		if err == nil && res.Error != nil {
			err = res.Error
		}
		if err == nil {
			err = fmt.Errorf("partition %d is missing from the answer", id)
			for _, p := range res.Topics[r.cfg.Topic] {
				if p.Partition != id {
					continue
				}
				if p.Error != nil {
					err = p.Error
					break
				}
				return p.CommittedOffset, p.Metadata, true
			}
		}
		if ctx.Err() != nil {
			return 0, "", false
		}
		log.Warn("read committed offset and metadata; retrying", "attempt", attempt, "err", err)
		backoff.Sleep(ctx, r.cfg.Retry.Delay(attempt))
	}
}

// fetchMaxWait is how long the broker may hold a fetch of a caught-up
// partition before answering it empty.
const fetchMaxWait = 250 * time.Millisecond

// partition is the state of one owned partition inside one generation.
type partition struct {
	r   *Runner
	gen *generation
	id  int
	src *fetcher
	// pending holds the records of the last fetch response taken that did
	// not fit in the batch; highWatermark is that response's.
	pending []kafka.Message
	// response is the fetch response's record slice pending is part of,
	// handed back to the fetcher once pending is drained.
	response []kafka.Message
	// frame is the buffer that response was read into; produced holds
	// those whose records are all in the batch, handed back to the
	// fetcher once the batch's outputs are produced. A Processor must
	// therefore not keep a record's bytes past its batch.
	frame         []byte
	produced      [][]byte
	highWatermark int64
	proc          Processor
	committer     Committer
	out           Output
	batch         []kafka.Message
	log           *slog.Logger
	lag           prometheus.Gauge
	// fetched is set once a record has been read: lag is known from then.
	fetched bool
	// next is the offset after the last record processed.
	next int64
	// lastOffset and lastMeta are what was last committed (or found
	// committed), so that a tick that changed nothing commits nothing.
	lastOffset int64
	lastMeta   string
}

// consume owns one partition until its generation ends (a rebalance, or the
// runner stopping).
func (r *Runner) consume(gen *generation, id int) {
	stop := gen.ctx
	// A partition goroutine returns only once the generation is over; this
	// makes sure of it, so that no partition is left unconsumed.
	defer gen.end(errors.New("partition stopped"))
	log := r.log.With("partition", id)
	committed, meta, ok := r.fetchCommitted(stop, id, log)
	if !ok {
		return
	}
	offset := committed
	if offset < 0 {
		offset = r.cfg.StartOffset
	}
	fctx, stopFetching := context.WithCancel(stop)
	src := startFetcher(fctx, &fetcher{
		dialer: r.dialer, brokers: r.cfg.Brokers, topic: r.cfg.Topic, partition: id,
		maxBytes: r.cfg.FetchMaxBytes, maxWait: fetchMaxWait, retry: r.cfg.Retry, log: log,
	}, offset)
	defer func() {
		stopFetching()
		src.wait()
	}()
	r.mu.Lock()
	r.owned[id] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.owned, id)
		r.mu.Unlock()
		r.lag.DeleteLabelValues(strconv.Itoa(id))
	}()

	p := &partition{
		r: r, gen: gen, id: id, src: src, log: log,
		proc:       r.factory(Partition{Topic: r.cfg.Topic, ID: id, Offset: offset, Metadata: meta}),
		lag:        r.lag.WithLabelValues(strconv.Itoa(id)),
		next:       offset,
		lastOffset: committed,
		lastMeta:   meta,
	}
	if c, ok := p.proc.(Closer); ok {
		defer c.Close()
	}
	p.committer, _ = p.proc.(Committer)
	log.Debug("partition started", "offset", offset)

	// The batch in hand is finished under drain: no deadline while the
	// generation lasts, DrainTimeout once it has ended.
	drain, release := drainContext(stop, r.cfg.DrainTimeout)
	defer release()

	ticker, _ := p.proc.(Ticker)
	lastTick := time.Now()
	for {
		n := p.fetch(stop)
		// Tick only an idle partition known to be caught up: a tick moves
		// event time with the wall clock, which must never overtake records
		// still waiting in Kafka (replaying after a restart, or a slow fetch).
		ticked := false
		if ticker != nil && n == 0 && p.fetched && p.lagNow() == 0 && time.Since(lastTick) >= r.cfg.TickInterval && stop.Err() == nil {
			lastTick = time.Now()
			p.out.cur, p.out.now = -1, lastTick
			ticker.Tick(lastTick, &p.out)
			ticked = true
		}
		// A tick's effect on the state is committed before the next record
		// is read, so that a record judged against it is judged against it
		// again after a restart.
		if n > 0 || p.out.Len() > 0 || (ticked && p.stateChanged()) {
			if err := p.flush(drain); err != nil {
				log.Warn("batch not committed; it will be re-delivered", "err", err)
				return
			}
		}
		if stop.Err() != nil {
			log.Debug("partition stopped", "next", p.next)
			return
		}
	}
}

// fetch gathers one batch into p.batch and processes it, returning how many
// records it read. It returns 0 when stop ends before any record arrives, or
// after TickInterval with nothing to read (so tickers run on idle
// partitions).
func (p *partition) fetch(stop context.Context) int {
	p.batch = p.batch[:0]
	if len(p.pending) == 0 {
		// Idle means no record for a whole TickInterval: the broker's empty
		// answers, every fetchMaxWait, do not end the wait, or a tick
		// would follow a record by as little as that.
		idle := time.NewTimer(p.r.cfg.TickInterval)
	wait:
		for len(p.pending) == 0 {
			select {
			case res := <-p.src.out:
				p.take(res)
			case <-idle.C:
				break wait
			case <-stop.Done():
				break wait
			}
		}
		idle.Stop()
		if len(p.pending) == 0 {
			return 0
		}
	}
	p.fill()
	if len(p.batch) < p.r.cfg.MaxBatch {
		linger := time.NewTimer(p.r.cfg.MaxWait)
	gather:
		for len(p.batch) < p.r.cfg.MaxBatch {
			select {
			case res := <-p.src.out:
				p.take(res)
				p.fill()
			case <-linger.C:
				break gather
			case <-stop.Done():
				break gather
			}
		}
		linger.Stop()
	}
	p.fetched = true
	p.out.now = time.Now()
	for i := range p.batch {
		p.out.cur = i
		p.proc.Process(&p.batch[i], &p.out)
	}
	p.next = p.batch[len(p.batch)-1].Offset + 1
	p.r.consumed.Add(float64(len(p.batch)))
	p.r.batches.Observe(float64(len(p.batch)))
	return len(p.batch)
}

// flush produces everything emitted for the batch, then commits, retrying
// both until they succeed or ctx (the drain) ends.
func (p *partition) flush(ctx context.Context) error {
	if err := p.produce(ctx); err != nil {
		return fmt.Errorf("produce %d records: %w", p.out.Len(), err)
	}
	p.out.reset()
	for i, b := range p.produced {
		p.src.recycleFrame(b)
		p.produced[i] = nil
	}
	p.produced = p.produced[:0]
	if err := p.commit(ctx); err != nil {
		return err
	}
	p.r.committed.Add(float64(len(p.batch)))
	p.lag.Set(float64(p.lagNow()))
	return nil
}

// take keeps a fetch response's records for the next batches. It is
// called with nothing pending (fill drains pending, or fills the batch,
// which ends the gathering), so the response's slice is kept as it is.
func (p *partition) take(res fetched) {
	p.highWatermark = res.highWatermark
	if len(p.pending) == 0 && len(res.msgs) > 0 {
		p.pending, p.response, p.frame = res.msgs, res.msgs, res.frame
		return
	}
	p.pending = append(p.pending, res.msgs...)
}

// fill moves pending records into the batch, up to MaxBatch. Once the
// response's records are all copied into batches, its slice goes back to
// the fetcher.
func (p *partition) fill() {
	if p.batch == nil {
		// Made on the first record: an idle partition (the worker runs
		// every agent, used or not) holds no batch.
		p.batch = make([]kafka.Message, 0, p.r.cfg.MaxBatch)
	}
	n := min(p.r.cfg.MaxBatch-len(p.batch), len(p.pending))
	p.batch = append(p.batch, p.pending[:n]...)
	p.pending = p.pending[n:]
	if len(p.pending) == 0 {
		p.pending = nil
		if p.response != nil {
			p.src.recycle(p.response)
			p.response = nil
		}
		if p.frame != nil {
			// Its records are in this batch, and outputs may alias them
			// until they are produced.
			p.produced = append(p.produced, p.frame)
			p.frame = nil
		}
	}
}

// lagNow is how many records the partition held past the last one
// processed when it was last fetched.
func (p *partition) lagNow() int64 {
	return max(p.highWatermark-p.next, 0)
}

// position is what to commit now: the offset after the last record, or
// what the Committer allows, with its metadata.
func (p *partition) position() (int64, string) {
	if p.committer == nil {
		return p.next, ""
	}
	offset, meta := p.committer.Commit(p.next)
	return min(offset, p.next), meta
}

// stateChanged reports whether a commit now would store something new.
func (p *partition) stateChanged() bool {
	offset, meta := p.position()
	return offset != p.lastOffset || meta != p.lastMeta
}

// commit stores the position, retrying a failed commit with backoff until
// it succeeds or ctx ends. A commit the coordinator refuses because the
// generation is over ends the generation instead.
func (p *partition) commit(ctx context.Context) error {
	offset, meta := p.position()
	for attempt := 1; ; attempt++ {
		err := p.commitOnce(ctx, offset, meta)
		if err == nil {
			p.lastOffset, p.lastMeta = offset, meta
			return nil
		}
		p.r.commitErrs.Inc()
		err = fmt.Errorf("commit offset %d: %w", offset, err)
		// REBALANCE_IN_PROGRESS is transient while the generation lasts
		// (the heartbeat ends it when the rebalance is real); the others
		// mean it is over.
		if generationOver(err) && (!errors.Is(err, kafka.RebalanceInProgress) || p.gen.ctx.Err() != nil) {
			p.gen.end(errGenerationOver)
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		p.log.Warn("commit failed; retrying", "attempt", attempt, "err", err)
		backoff.Sleep(ctx, p.r.cfg.Retry.Delay(attempt))
	}
}

func (p *partition) commitOnce(ctx context.Context, offset int64, meta string) error {
	// One attempt may not hang on an unresponsive broker for longer than a
	// session.
	ctx, cancel := context.WithTimeout(ctx, p.r.cfg.SessionTimeout)
	defer cancel()
	p.r.commitMu.Lock()
	defer p.r.commitMu.Unlock()
	res, err := p.r.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      p.r.cfg.GroupID,
		GenerationID: p.gen.id,
		MemberID:     p.gen.memberID,
		Topics:       map[string][]kafka.OffsetCommit{p.r.cfg.Topic: {{Partition: p.id, Offset: offset, Metadata: meta}}},
	})
	if err != nil {
		return err
	}
	for _, ps := range res.Topics {
		for _, pr := range ps {
			if pr.Error != nil {
				return pr.Error
			}
		}
	}
	return nil
}

// produce writes everything emitted for the batch, retrying failed records
// with backoff until they are acknowledged or ctx ends (a cancelled write
// returns at once). A record Kafka refuses alone as too large goes to the
// Processor's Rejected hook.
func (p *partition) produce(ctx context.Context) error {
	pending, from := p.out.msgs, p.out.from
	for attempt := 1; len(pending) > 0; attempt++ {
		err := p.r.writer.WriteMessages(ctx, pending...)
		if err == nil {
			p.count(pending)
			return nil
		}
		p.r.produceErrs.Inc()
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(pending) {
			var ok []kafka.Message
			// retry collects what is produced again, with the origin of
			// each record, replacements for rejected records included.
			var retry Output
			keep := func(i int) {
				retry.cur = from[i]
				retry.Emit(pending[i])
			}
			for i, e := range werrs {
				switch {
				case e == nil:
					ok = append(ok, pending[i])
				case errors.Is(e, kafka.MessageSizeTooLarge):
					// Kafka refuses a whole batch for one record too large,
					// and kafka-go reports it on every record of the batch:
					// only a record refused on its own is rejected.
					switch alone := p.r.writer.WriteMessages(ctx, pending[i]); {
					case alone == nil:
						ok = append(ok, pending[i])
					case tooLarge(alone):
						retry.cur = from[i]
						p.proc.Rejected(pending[i], p.input(from[i]), alone, &retry)
					default:
						keep(i)
					}
				default:
					keep(i)
				}
			}
			p.count(ok)
			pending, from = retry.msgs, retry.from
		}
		if len(pending) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		p.log.Warn("produce failed; retrying", "records", len(pending), "attempt", attempt, "err", summary(err))
		backoff.Sleep(ctx, p.r.cfg.Retry.Delay(attempt))
	}
	return nil
}

// input returns the record at index i of the batch, or nil for -1.
func (p *partition) input(i int) *kafka.Message {
	if i < 0 || i >= len(p.batch) {
		return nil
	}
	return &p.batch[i]
}

// summary shortens a kafka.WriteErrors, whose text repeats one error per
// record, to how many failed and the first error.
func summary(err error) error {
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) {
		return err
	}
	var first error
	for _, e := range werrs {
		if e != nil && first == nil {
			first = e
		}
	}
	return fmt.Errorf("%d of %d records failed, the first with: %w", werrs.Count(), len(werrs), first)
}

// tooLarge reports whether a write failed because Kafka refuses the record's
// size. kafka-go wraps a per-record error in WriteErrors, which errors.Is
// does not look through.
func tooLarge(err error) bool {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if errors.Is(e, kafka.MessageSizeTooLarge) {
				return true
			}
		}
		return false
	}
	return errors.Is(err, kafka.MessageSizeTooLarge)
}

func (p *partition) count(msgs []kafka.Message) {
	if len(msgs) == 0 {
		return
	}
	// Count per topic without a map for the common one-topic case.
	topic, n := msgs[0].Topic, 0
	for _, m := range msgs {
		if m.Topic != topic {
			p.r.produced.WithLabelValues(topic).Add(float64(n))
			topic, n = m.Topic, 0
		}
		n++
	}
	p.r.produced.WithLabelValues(topic).Add(float64(n))
}

// OutputAt returns an Output for a batch the runtime began at now, for
// tests of processors.
func OutputAt(now time.Time) *Output { return &Output{now: now} }

// Messages returns the records queued in o, for tests of processors.
func (o *Output) Messages() []kafka.Message { return o.msgs }
