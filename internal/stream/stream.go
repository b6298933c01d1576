package stream

import (
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
	"github.com/domination/domination/internal/metrics"
)

// Output collects the records a Processor emits for one batch.
type Output struct {
	msgs []kafka.Message
	// from holds, for each record in msgs, the index in the batch of the
	// input being processed when it was emitted, or -1 (emitted by a tick).
	from []int
	cur  int
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

func (o *Output) reset() {
	clear(o.msgs)
	o.msgs = o.msgs[:0]
	o.from = o.from[:0]
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
	// kafka.FirstOffset (default) or kafka.LastOffset.
	StartOffset int64
	// MaxBatch caps the records in one produce-and-commit cycle. Default
	// 4096.
	MaxBatch int
	// MaxWait is how long a batch keeps gathering after its first record.
	// It bounds the latency added by batching. Default 20ms.
	MaxWait time.Duration
	// FetchMaxBytes caps one fetch response per partition. Default 8 MiB.
	FetchMaxBytes int
	// SessionTimeout and RebalanceTimeout are the consumer group's. A
	// stopped worker's partitions move after SessionTimeout. Defaults 10s
	// and 20s.
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// HeartbeatInterval defaults to 2s.
	HeartbeatInterval time.Duration
	// DrainTimeout bounds finishing the current batch when stopping.
	// Default 10s.
	DrainTimeout time.Duration
	// TickInterval is how often a Ticker processor is ticked. Default 1s.
	TickInterval time.Duration
	// Retry bounds the backoff between failed produce or join attempts.
	Retry backoff.Config
}

// WithDefaults returns c with its zero fields set to the documented defaults.
func (c Config) WithDefaults() Config {
	if c.StartOffset == 0 {
		c.StartOffset = kafka.FirstOffset
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 4096
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 20 * time.Millisecond
	}
	if c.FetchMaxBytes <= 0 {
		c.FetchMaxBytes = 8 << 20
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = 20 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.TickInterval <= 0 {
		c.TickInterval = time.Second
	}
	return c
}

// Validate reports a missing or impossible setting.
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
	cfg     Config
	dialer  *kafka.Dialer
	admin   *kafka.Client
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
	// commitMu lets one partition commit at a time: kafka-go's coordinator
	// connection makes concurrent committers spin while they wait for their
	// response (a quarter of the CPU in profiles); queued on a mutex they
	// sleep instead.
	commitMu sync.Mutex
}

// New returns a Runner; it starts nothing until Run. admin is used to read
// and write commit metadata for Committer processors; it may be nil when the
// processors are not Committers.
func New(cfg Config, dialer *kafka.Dialer, admin *kafka.Client, w Writer, factory Factory, m *metrics.Metrics, log *slog.Logger) (*Runner, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if factory == nil || w == nil {
		return nil, errors.New("stream: a Factory and a Writer are required")
	}
	name := cfg.Name
	return &Runner{
		cfg: cfg, dialer: dialer, admin: admin, writer: w, factory: factory,
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

// Run joins the group and consumes until ctx ends, then drains and leaves.
// It returns nil after a clean stop. A broker that cannot be reached is
// retried with backoff, logged at each attempt, until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	// NewConsumerGroup only checks its configuration; connecting (and
	// retrying while the brokers are down) happens inside Next.
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                     r.cfg.GroupID,
		Brokers:                r.cfg.Brokers,
		Dialer:                 r.dialer,
		Topics:                 []string{r.cfg.Topic},
		GroupBalancers:         []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
		HeartbeatInterval:      r.cfg.HeartbeatInterval,
		SessionTimeout:         r.cfg.SessionTimeout,
		RebalanceTimeout:       r.cfg.RebalanceTimeout,
		PartitionWatchInterval: 5 * time.Second,
		WatchPartitionChanges:  true,
		StartOffset:            r.cfg.StartOffset,
		JoinGroupBackoff:       time.Second,
		Logger:                 kafka.LoggerFunc(func(string, ...any) {}),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			r.log.Debug("kafka consumer group", "msg", fmt.Sprintf(msg, args...))
		}),
	})
	if err != nil {
		return fmt.Errorf("create consumer group %s: %w", r.cfg.GroupID, err)
	}

	var parts sync.WaitGroup
	defer func() {
		// Partitions drain their batch first; only then is the group left,
		// so their final commits still belong to a live generation.
		parts.Wait()
		if err := group.Close(); err != nil {
			r.log.Warn("leave consumer group", "err", err)
		}
		r.partitions.Set(0)
	}()

	failures := 0
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			failures++
			r.log.Warn("join consumer group generation", "err", err, "attempt", failures)
			sleep(ctx, r.cfg.Retry.Delay(failures))
			continue
		}
		failures = 0
		r.rebalances.Inc()
		assigned := gen.Assignments[r.cfg.Topic]
		r.partitions.Set(float64(len(assigned)))
		ids := make([]int, 0, len(assigned))
		for _, a := range assigned {
			ids = append(ids, a.ID)
		}
		r.log.Info("joined generation", "generation", gen.ID, "member", gen.MemberID, "partitions", ids)
		meta := r.metadata(ctx, ids)
		for _, a := range assigned {
			p := Partition{Topic: r.cfg.Topic, ID: a.ID, Offset: a.Offset, Metadata: meta[a.ID]}
			parts.Add(1)
			gen.Start(func(gctx context.Context) {
				defer parts.Done()
				r.consume(ctx, gctx, gen, p)
			})
		}
	}
}

// metadata reads the commit metadata of the partitions, when there is an
// admin client to read it with. A failure is logged and yields none: the
// processors then start from empty state at the committed offset.
func (r *Runner) metadata(ctx context.Context, ids []int) map[int]string {
	if r.admin == nil || len(ids) == 0 {
		return nil
	}
	res, err := r.admin.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: r.cfg.GroupID, Topics: map[string][]int{r.cfg.Topic: ids}})
	if err == nil && res.Error != nil {
		err = res.Error
	}
	if err != nil {
		r.log.Warn("read commit metadata", "err", err)
		return nil
	}
	out := map[int]string{}
	for _, p := range res.Topics[r.cfg.Topic] {
		if p.Error == nil {
			out[p.Partition] = p.Metadata
		}
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// partition is the state of one owned partition inside one generation.
type partition struct {
	r      *Runner
	gen    *kafka.Generation
	id     int
	reader *kafka.Reader
	proc   Processor
	out    Output
	batch  []kafka.Message
	log    *slog.Logger
	lag    prometheus.Gauge
	// fetched is set once a record has been read: lag is known from then.
	fetched bool
	// next is the offset after the last record processed.
	next int64
}

// consume owns one partition until the generation or the runner ends. root
// is the runner's context (stop: drain), gctx the generation's (rebalance).
func (r *Runner) consume(root, gctx context.Context, gen *kafka.Generation, part Partition) {
	id, offset := part.ID, part.Offset
	log := r.log.With("partition", id)
	if offset < 0 {
		offset = r.cfg.StartOffset
		part.Offset = offset
	}
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:         r.cfg.Brokers,
		Topic:           r.cfg.Topic,
		Partition:       id,
		Dialer:          r.dialer,
		MinBytes:        1,
		MaxBytes:        r.cfg.FetchMaxBytes,
		MaxWait:         250 * time.Millisecond,
		QueueCapacity:   r.cfg.MaxBatch,
		ReadLagInterval: -1, // lag comes from fetch responses; no extra requests
		ReadBackoffMin:  100 * time.Millisecond,
		ReadBackoffMax:  2 * time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn("kafka reader", "msg", fmt.Sprintf(msg, args...))
		}),
	})
	defer reader.Close()
	if err := reader.SetOffset(offset); err != nil {
		log.Error("set start offset", "offset", offset, "err", err)
		return
	}
	r.mu.Lock()
	r.owned[id] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.owned, id)
		r.mu.Unlock()
	}()

	p := &partition{
		r: r, gen: gen, id: id, reader: reader, log: log,
		proc:  r.factory(part),
		batch: make([]kafka.Message, 0, r.cfg.MaxBatch),
		lag:   r.lag.WithLabelValues(strconv.Itoa(id)),
		next:  offset,
	}
	log.Debug("partition started", "offset", offset)

	// stop ends when either the runner stops or the generation ends.
	stop, cancel := context.WithCancel(gctx)
	defer cancel()
	go func() {
		select {
		case <-root.Done():
			cancel()
		case <-stop.Done():
		}
	}()

	ticker, _ := p.proc.(Ticker)
	lastTick := time.Now()
	for {
		n := p.fetch(stop)
		// Tick only an idle partition known to be caught up: a tick moves
		// event time with the wall clock, which must never overtake records
		// still waiting in Kafka (replaying after a restart, or a slow fetch).
		if ticker != nil && n == 0 && p.fetched && reader.Lag() == 0 && time.Since(lastTick) >= r.cfg.TickInterval {
			lastTick = time.Now()
			p.out.cur = -1
			ticker.Tick(lastTick, &p.out)
		}
		if n > 0 || p.out.Len() > 0 {
			// Finish the batch even when stopping: produce and commit under
			// a drain deadline, detached from the cancelled contexts.
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(root), r.cfg.DrainTimeout)
			err := p.flush(dctx, stop)
			dcancel()
			if err != nil {
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
	first, cancel := context.WithTimeout(stop, p.r.cfg.TickInterval)
	m, err := p.reader.FetchMessage(first)
	cancel()
	if err != nil {
		return 0
	}
	p.batch = append(p.batch, m)
	p.fetched = true
	if len(p.batch) < p.r.cfg.MaxBatch {
		more, cancel := context.WithTimeout(stop, p.r.cfg.MaxWait)
		for len(p.batch) < p.r.cfg.MaxBatch {
			m, err := p.reader.FetchMessage(more)
			if err != nil {
				break
			}
			p.batch = append(p.batch, m)
		}
		cancel()
	}
	for i := range p.batch {
		p.out.cur = i
		p.proc.Process(&p.batch[i], &p.out)
	}
	p.next = p.batch[len(p.batch)-1].Offset + 1
	p.r.consumed.Add(float64(len(p.batch)))
	p.r.batches.Observe(float64(len(p.batch)))
	return len(p.batch)
}

// flush produces everything emitted for the batch, then commits. It retries
// produce failures until ctx (the drain deadline) ends or, when not
// stopping, indefinitely with backoff.
func (p *partition) flush(ctx, stop context.Context) error {
	if err := p.produce(ctx, stop); err != nil {
		return fmt.Errorf("produce %d records: %w", p.out.Len(), err)
	}
	p.out.reset()
	if err := p.commit(ctx); err != nil {
		p.r.commitErrs.Inc()
		return err
	}
	p.r.committed.Add(float64(len(p.batch)))
	if lag := p.reader.Lag(); lag >= 0 {
		p.lag.Set(float64(lag))
	}
	return nil
}

// commit stores the offset after the batch, or what the Committer allows
// with its metadata.
func (p *partition) commit(ctx context.Context) error {
	p.r.commitMu.Lock()
	defer p.r.commitMu.Unlock()
	c, ok := p.proc.(Committer)
	if !ok || p.r.admin == nil {
		if err := p.gen.CommitOffsets(map[string]map[int]int64{p.r.cfg.Topic: {p.id: p.next}}); err != nil {
			return fmt.Errorf("commit offset %d: %w", p.next, err)
		}
		return nil
	}
	offset, meta := c.Commit(p.next)
	offset = min(offset, p.next)
	res, err := p.r.admin.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      p.gen.GroupID,
		GenerationID: int(p.gen.ID),
		MemberID:     p.gen.MemberID,
		Topics:       map[string][]kafka.OffsetCommit{p.r.cfg.Topic: {{Partition: p.id, Offset: offset, Metadata: meta}}},
	})
	if err != nil {
		return fmt.Errorf("commit offset %d: %w", offset, err)
	}
	for _, ps := range res.Topics {
		for _, pr := range ps {
			if pr.Error != nil {
				return fmt.Errorf("commit offset %d: %w", offset, pr.Error)
			}
		}
	}
	return nil
}

func (p *partition) produce(ctx, stop context.Context) error {
	pending, from := p.out.msgs, p.out.from
	attempt := 0
	for len(pending) > 0 {
		// While running, a produce failure is retried until it succeeds; when
		// stopping, only until the drain deadline.
		wctx := ctx
		if stop.Err() == nil {
			wctx = context.WithoutCancel(ctx)
		}
		err := p.r.writer.WriteMessages(wctx, pending...)
		if err == nil {
			p.count(pending)
			return nil
		}
		p.r.produceErrs.Inc()
		attempt++
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
					switch alone := p.r.writer.WriteMessages(wctx, pending[i]); {
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
		p.log.Warn("produce failed; retrying", "records", len(pending), "attempt", attempt, "err", err)
		sleep(ctx, p.r.cfg.Retry.Delay(attempt))
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

// Messages returns the records queued in o, for tests of processors.
func (o *Output) Messages() []kafka.Message { return o.msgs }
