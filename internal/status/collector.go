package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/internal/broker"
)

// Collector takes Reports of the whole path and keeps the metrics current.
type Collector struct {
	cfg     Config
	kafka   *kafka.Client
	ch      driver.Conn
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time // time.Now; tests move it

	// mu serialises Collect: the stall marks and the dead-letter cursors
	// are state carried from one snapshot to the next.
	mu     sync.Mutex
	stalls *stallTracker
	dlq    map[string]*deadLetterCursor
	stores map[string]*Store // last good read, kept while ClickHouse fails
	// engines holds each engine table's topic and group as last read from
	// ClickHouse, used while ClickHouse cannot be read.
	engines map[string][2]string

	// pub guards what Run publishes, so that Latest never waits for a
	// Collect.
	pub     sync.Mutex
	latest  Report
	haveOne bool
	lastErr string
}

// New returns a Collector reading Kafka through client and ClickHouse
// through conn (whose database holds the stores). It registers its metrics
// on reg when reg is not nil, and logs to log (nil: nowhere). It does no
// I/O.
func New(cfg Config, client *kafka.Client, conn driver.Conn, reg prometheus.Registerer, log *slog.Logger) (*Collector, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil || conn == nil {
		return nil, errors.New("status: a kafka client and a clickhouse connection are needed")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("status: register metrics: %w", err)
	}
	return &Collector{
		cfg: cfg, kafka: client, ch: conn, log: log, metrics: m, now: time.Now,
		stalls: newStallTracker(), dlq: map[string]*deadLetterCursor{}, stores: map[string]*Store{}, engines: map[string][2]string{},
	}, nil
}

// Config returns the collector's config, defaults applied.
func (c *Collector) Config() Config { return c.cfg }

// Collect takes one snapshot. Stall tracking needs history: a partition is
// stalled only once a Collector has seen its offset unmoved for the stall
// time, so the first Collect reports no stall; later ones (Run, or a caller
// collecting again) do. Dead-letter topics are read from where the last
// Collect stopped. Collect fails only when Kafka cannot be reached; a
// stage that cannot be read, or ClickHouse failing, is said in the stage's
// Problem.
func (c *Collector) Collect(ctx context.Context) (Report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if _, err := c.kafka.Metadata(ctx, &kafka.MetadataRequest{}); err != nil {
		return Report{}, fmt.Errorf("reach kafka at %s: %w", c.kafka.Addr, err)
	}
	r := Report{At: c.now().UTC()}
	cfg := c.cfg
	tables, tablesErr := readTables(ctx, c.ch)

	agentStage := func(name, topic, group string, after time.Duration) Stage {
		s := Stage{Name: KindAgent + ":" + name, Kind: KindAgent, Topic: topic, Group: group, StallAfter: Duration(after)}
		c.observe(ctx, &s)
		return s
	}
	engine := func(es engineStage, topic, group string) Stage {
		if tablesErr == nil {
			if t, g := engineSettings(tables.engineFull[es.engine]); t != "" && g != "" {
				c.engines[es.engine] = [2]string{t, g}
			} else {
				delete(c.engines, es.engine)
			}
		}
		if tg, ok := c.engines[es.engine]; ok {
			topic, group = tg[0], tg[1]
		}
		s := Stage{Name: KindClickHouse + ":" + es.store, Kind: KindClickHouse, Topic: topic, Group: group, StallAfter: Duration(cfg.StallAfter)}
		parts := c.observe(ctx, &s)
		c.store(ctx, &s, es, parts, tables, tablesErr, r.At)
		return s
	}
	r.Stages = []Stage{
		agentStage(agents.ShadowAgentName, cfg.Shadow.InputTopic, cfg.Shadow.GroupID, cfg.StallAfter),
		engine(shadowStore, cfg.Engines.ShadowTopic, cfg.Engines.ShadowGroup),
		agentStage(agents.VisitsAgentName, cfg.Visits.InputTopic, cfg.Visits.GroupID, cfg.StallAfter),
		agentStage(agents.WindowsAgentName, cfg.Visits.RepartitionTopic, cfg.WindowsGroup(), cfg.StallAfter+cfg.windowsSlack()),
		engine(activeVisitorsStore, cfg.Engines.ActiveVisitorsTopic, cfg.Engines.ActiveVisitorsGroup),
	}
	for _, s := range r.Stages {
		r.Stalled = r.Stalled || s.Stalled
	}
	for _, topic := range []string{cfg.Shadow.DeadLetterTopic, cfg.Visits.DeadLetterTopic, cfg.ShadowDeadLetterTopic, cfg.ActiveVisitorsDeadLetterTopic} {
		cur := c.dlq[topic]
		if cur == nil {
			cur = newDeadLetterCursor()
			c.dlq[topic] = cur
		}
		err := cur.advance(ctx, c.kafka, topic)
		d := cur.counts(topic)
		if err != nil {
			d.Problem = err.Error()
		}
		r.DeadLetters = append(r.DeadLetters, d)
	}
	if cfg.Ready != nil {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := cfg.Ready(rctx)
		cancel()
		r.Ready = &Readiness{Ready: err == nil}
		if err != nil {
			r.Ready.Reason = err.Error()
		}
	}
	return r, nil
}

// observe fills the partitions, lag and stall of s and returns the
// partitions' offsets; on an error it says so in s.Problem.
func (c *Collector) observe(ctx context.Context, s *Stage) []broker.Span {
	parts, err := topicBounds(ctx, c.kafka, s.Topic)
	if err != nil {
		s.Problem = err.Error()
		return nil
	}
	committed, err := committedOffsets(ctx, c.kafka, s.Group, s.Topic, parts)
	if err != nil {
		s.Problem = err.Error()
		return parts
	}
	now := c.now()
	ids := make([]int, 0, len(parts))
	for _, b := range parts {
		ids = append(ids, b.Partition)
		p := Partition{Partition: b.Partition, StartOffset: b.First, EndOffset: b.End, CommittedOffset: committed[b.Partition]}
		p.Lag = lagOf(b, p.CommittedOffset)
		since, stalled := c.stalls.observe(s.Name, b.Partition, p.CommittedOffset, p.Lag, now, time.Duration(s.StallAfter))
		if p.Lag > 0 {
			at := since.UTC()
			p.WaitingSince = &at
		}
		p.Stalled = stalled
		s.Lag += p.Lag
		if stalled {
			s.Stalled = true
			if s.Stall == nil || since.Before(s.Stall.Since) {
				s.Stall = &Stall{Since: since.UTC(), Partition: b.Partition, Offset: p.CommittedOffset}
			}
		}
		s.Partitions = append(s.Partitions, p)
	}
	c.stalls.keepOnly(s.Name, ids)
	return parts
}

// store fills the ClickHouse side of an engine stage.
func (c *Collector) store(ctx context.Context, s *Stage, es engineStage, parts []broker.Span, tables tableInfo, tablesErr error, at time.Time) {
	problem := func(err error) {
		if s.Problem != "" {
			s.Problem += "; "
		}
		s.Problem += err.Error()
	}
	var st *Store
	var err error
	if tablesErr != nil {
		err = tablesErr
	} else {
		st, err = storeStats(ctx, c.ch, es, tables)
	}
	if err != nil {
		problem(err)
		if prev := c.stores[es.store]; prev != nil {
			cp := *prev
			st = &cp
		} else if st == nil {
			st = &Store{Table: es.store, ErrorsTable: es.errors}
		}
	} else {
		c.stores[es.store] = st
	}
	s.Store = st
	if len(parts) == 0 {
		return
	}
	newest, ok, err := newestEventTime(ctx, c.kafka, s.Topic, parts, es.decode)
	if err != nil {
		problem(err)
		return
	}
	if !ok {
		st.NewestOnTopic, st.FreshnessSeconds = nil, 0
		return
	}
	st.NewestOnTopic = &newest
	from := at
	if st.NewestEvent != nil {
		from = *st.NewestEvent
		st.FreshnessSeconds = max(newest.Sub(from).Seconds(), 0)
	} else {
		st.FreshnessSeconds = max(at.Sub(newest).Seconds(), 0)
	}
}

// Run refreshes the report every Config.Interval until ctx ends, keeping
// the metrics and Latest current. A refresh that fails is logged (once per
// distinct error) and Latest keeps the last good report, with Error set.
func (c *Collector) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		r, err := c.Collect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.publish(r, err)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Collector) publish(r Report, err error) {
	c.pub.Lock()
	defer c.pub.Unlock()
	if err != nil {
		if msg := err.Error(); msg != c.lastErr {
			c.log.Warn("status refresh failed; will retry", "err", err, "every", c.cfg.Interval)
			c.lastErr = msg
		}
		c.latest.Error = err.Error()
		if c.cfg.Ready != nil {
			c.metrics.ready.Set(0)
		}
		return
	}
	if c.lastErr != "" {
		c.log.Info("status refresh works again")
		c.lastErr = ""
	}
	for _, s := range r.StalledStages() {
		if prev := c.latestStage(s.Name); prev == nil || !prev.Stalled {
			c.log.Warn("stage stalled", "stage", s.Name, "topic", s.Topic, "group", s.Group,
				"partition", s.Stall.Partition, "offset", s.Stall.Offset, "since", s.Stall.Since, "lag", s.Lag)
		}
	}
	for _, s := range r.Stages {
		if prev := c.latestStage(s.Name); prev != nil && prev.Stalled && !s.Stalled {
			c.log.Info("stage moves again", "stage", s.Name, "topic", s.Topic, "group", s.Group, "lag", s.Lag)
		}
	}
	c.latest, c.haveOne = r, true
	c.metrics.update(r)
}

func (c *Collector) latestStage(name string) *Stage {
	if !c.haveOne {
		return nil
	}
	for i := range c.latest.Stages {
		if c.latest.Stages[i].Name == name {
			return &c.latest.Stages[i]
		}
	}
	return nil
}

// Latest returns the last report Run took, and false before the first.
func (c *Collector) Latest() (Report, bool) {
	c.pub.Lock()
	defer c.pub.Unlock()
	return c.latest, c.haveOne
}

// Handler serves Latest as JSON (GET /status): 200 with the report, 503
// until the first refresh.
func (c *Collector) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rep, ok := c.Latest()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "no status collected yet"})
			return
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	})
}
