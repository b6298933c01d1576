package guard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/backoff"
	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/stream"
	"github.com/domination/domination/metrics"
	"github.com/domination/domination/wire"
)

// Mode says when the guard runs.
type Mode string

// Modes.
const (
	// ModeAuto guards servers whose Kafka engine stops on a bad record
	// (before clickhouse.ErrorStreamSince) and stays idle on the others.
	ModeAuto Mode = "auto"
	// ModeOn guards whatever the server's version.
	ModeOn Mode = "on"
	// ModeOff never guards.
	ModeOff Mode = "off"
)

// Table is one Kafka engine table, the topic it reads and what the guard
// does with records it cannot store.
type Table struct {
	// Store names the table in metrics and logs: "shadow".
	Store string
	// Engine and View are the Kafka engine table and the materialized view
	// that reads it; Errors is the errors table.
	Engine, View, Errors string
	// Topic is what Engine reads, Group its consumer group.
	Topic, Group string
	// DeadLetterTopic receives the records that break the contract.
	DeadLetterTopic string
	// Check is the topic's contract.
	Check func([]byte) error
}

// Defaults of Config and of the tables.
const (
	DefaultMode                          = ModeAuto
	DefaultShadowDeadLetterTopic         = wire.ShadowDeadLetterTopic
	DefaultActiveVisitorsDeadLetterTopic = wire.ActiveVisitorsDeadLetterTopic
	DefaultAuditGroup                    = "domination-guard"
	DefaultLeaderGroup                   = "domination-guard-leader"
	DefaultLeaderTopic                   = "domination-guard"
	DefaultSkipAfter                     = 25 * time.Second
	DefaultInterval                      = 2 * time.Second
	// DefaultMaxScan covers more than one block of the engine
	// (kafka_max_block_size defaults to max_block_size, 65,536 rows), so
	// the bad record of a failed block is found in one pass.
	DefaultMaxScan = 100000
	// AgentName labels the guard's audit in the agents' metrics.
	AgentName = "guard"
)

// Tables returns the two engine tables the migrations create, for src.
func Tables(src clickhouse.KafkaSource, shadowDLQ, visitorsDLQ string) []Table {
	src = src.WithDefaults()
	if shadowDLQ == "" {
		shadowDLQ = DefaultShadowDeadLetterTopic
	}
	if visitorsDLQ == "" {
		visitorsDLQ = DefaultActiveVisitorsDeadLetterTopic
	}
	return []Table{
		{Store: "shadow", Engine: "shadow_stream", View: "shadow_consumer", Errors: "shadow_errors",
			Topic: src.ShadowTopic, Group: src.ShadowGroup, DeadLetterTopic: shadowDLQ, Check: wire.CheckShadow},
		{Store: "active_visitors", Engine: "active_visitors_stream", View: "active_visitors_consumer", Errors: "active_visitors_errors",
			Topic: src.ActiveVisitorsTopic, Group: src.ActiveVisitorsGroup, DeadLetterTopic: visitorsDLQ, Check: wire.CheckActiveVisitors},
	}
}

// Config configures a Guard.
type Config struct {
	// Mode says when to guard. Default DefaultMode.
	Mode Mode
	// Tables are the engine tables to guard. Required.
	Tables []Table
	// Brokers are the bootstrap addresses. Required.
	Brokers []string
	// AuditGroup names the audit's consumer groups: each table's topic is
	// read in AuditGroup-<store>. Default DefaultAuditGroup.
	AuditGroup string
	// LeaderGroup and LeaderTopic elect the one worker that unsticks.
	// Defaults DefaultLeaderGroup and DefaultLeaderTopic.
	LeaderGroup, LeaderTopic string
	// SkipAfter is how long a partition with records waiting must have
	// kept its committed offset before the leader looks for a bad record
	// there. Default DefaultSkipAfter.
	SkipAfter time.Duration
	// Interval is how often the leader reads the engines' offsets.
	// Default DefaultInterval.
	Interval time.Duration
	// MaxScan caps the records read forward, per partition and watch, when
	// looking for the bad record behind a stall; the next watch goes on
	// from there. Default DefaultMaxScan.
	MaxScan int
	// NoAudit turns the audit off: the leader still moves the engines past
	// records they cannot parse, and dead-letters those, but records that
	// parse and break the contract are only kept out of the stores by the
	// views, without a dead letter naming their offset (on a server with
	// ErrorStream the errors view still notes them). The audit reads each
	// output topic once more; that is its cost. Default false.
	NoAudit bool
	// Audit tunes the audit's consumption; Name, Brokers, Topic and GroupID
	// are filled in. Defaults as stream.Config's.
	Audit stream.Config
}

// WithDefaults returns c with its zero (and negative) fields set to the
// documented defaults.
func (c Config) WithDefaults() Config {
	c.Mode = cmp.Or(c.Mode, DefaultMode)
	c.AuditGroup = cmp.Or(c.AuditGroup, DefaultAuditGroup)
	c.LeaderGroup = cmp.Or(c.LeaderGroup, DefaultLeaderGroup)
	c.LeaderTopic = cmp.Or(c.LeaderTopic, DefaultLeaderTopic)
	c.SkipAfter = cmp.Or(max(c.SkipAfter, 0), DefaultSkipAfter)
	c.Interval = cmp.Or(max(c.Interval, 0), DefaultInterval)
	c.MaxScan = cmp.Or(max(c.MaxScan, 0), DefaultMaxScan)
	return c
}

// Validate reports the first setting that cannot work. It applies no
// defaults.
func (c Config) Validate() error {
	switch c.Mode {
	case ModeAuto, ModeOn, ModeOff:
	default:
		return fmt.Errorf("guard: mode %q: want auto, on or off", c.Mode)
	}
	if c.Mode == ModeOff {
		return nil
	}
	if len(c.Brokers) == 0 {
		return errors.New("guard: no brokers")
	}
	if len(c.Tables) == 0 {
		return errors.New("guard: no tables")
	}
	for _, t := range append([]string{c.LeaderTopic}, tableTopics(c.Tables)...) {
		if err := broker.ValidTopic(t); err != nil {
			return fmt.Errorf("guard: %w", err)
		}
	}
	for _, t := range c.Tables {
		if t.Check == nil || t.Engine == "" || t.View == "" || t.Errors == "" || t.Group == "" {
			return fmt.Errorf("guard: table %q is incomplete", t.Store)
		}
		if t.Topic == t.DeadLetterTopic {
			return fmt.Errorf("guard: table %q: the dead-letter topic is the topic it reads", t.Store)
		}
	}
	return nil
}

func tableTopics(ts []Table) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Topic, t.DeadLetterTopic)
	}
	return out
}

// Deps are what a Guard uses and does not own.
type Deps struct {
	Dialer  *kafka.Dialer
	Admin   *kafka.Client
	Writer  stream.Writer
	CH      driver.Conn
	Metrics *metrics.Metrics
	// Registry receives the guard's own metrics; nil: none registered.
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Guard audits the output topics and unsticks the engine tables.
type Guard struct {
	cfg Config
	d   Deps
	log *slog.Logger
	m   guardMetrics
}

type guardMetrics struct {
	skipped     *prometheus.CounterVec
	validStalls *prometheus.CounterVec
	leader      prometheus.Gauge
}

// New returns a Guard; Run starts it. It does no I/O.
func New(cfg Config, d Deps) (*Guard, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	g := &Guard{cfg: cfg, d: d, log: d.Log.With("component", "guard")}
	g.m = guardMetrics{
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "domination", Subsystem: "clickhouse", Name: "guard_skipped_total",
			Help: "Records the guard moved a Kafka engine table past, by table and reason."}, []string{"table", "reason"}),
		validStalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "domination", Subsystem: "clickhouse", Name: "guard_valid_stalls_total",
			Help: "Stalls the guard found on valid records and left alone, by table."}, []string{"table"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "domination", Subsystem: "clickhouse", Name: "guard_leader",
			Help: "1 while this worker is the guard's leader."}),
	}
	if d.Registry != nil {
		for _, c := range []prometheus.Collector{g.m.skipped, g.m.validStalls, g.m.leader} {
			if err := d.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("register guard metrics: %w", err)
			}
		}
	}
	for _, t := range cfg.Tables {
		g.m.skipped.WithLabelValues(t.Store, string(wire.ReasonContract))
		g.m.validStalls.WithLabelValues(t.Store)
	}
	return g, nil
}

// Run guards until ctx ends. With ModeAuto it first asks ClickHouse for its
// version (retrying while it is unreachable) and returns nil at once on a
// server that needs no guard.
func (g *Guard) Run(ctx context.Context) error {
	if g.cfg.Mode == ModeOff {
		return nil
	}
	if g.cfg.Mode == ModeAuto {
		var v clickhouse.Version
		err := backoff.Retry(ctx, g.log, backoff.Config{}, "read clickhouse version", func(ctx context.Context) (err error) {
			v, err = clickhouse.ServerVersion(ctx, g.d.CH)
			return err
		})
		if err != nil {
			return nil // ctx ended
		}
		if v.ErrorStream() {
			g.log.Info("guard idle: the Kafka engine of this ClickHouse streams its parse errors", "server_version", v.String())
			return nil
		}
		g.log.Info("guard active: the Kafka engine of this ClickHouse stops on a bad record", "server_version", v.String())
		if err := clickhouse.CheckCommitOrder(ctx, g.d.CH, v); err != nil {
			g.log.Warn("clickhouse may lose rows on a crash", "err", err)
		}
	}
	topics := []broker.Topic{{Name: g.cfg.LeaderTopic, Partitions: broker.SinglePartition}}
	for _, t := range g.cfg.Tables {
		topics = append(topics, broker.Topic{Name: t.DeadLetterTopic, Partitions: broker.SinglePartition})
	}
	err := backoff.Retry(ctx, g.log, backoff.Config{}, "ensure guard topics", func(ctx context.Context) error {
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		return broker.EnsureTopics(tctx, g.d.Admin, topics...)
	})
	if err != nil {
		return nil // ctx ended
	}
	eg, ctx := errgroup.WithContext(ctx)
	for _, t := range g.cfg.Tables {
		if g.cfg.NoAudit {
			break
		}
		r, err := g.auditor(t)
		if err != nil {
			return err
		}
		eg.Go(func() error { return r.Run(ctx) })
	}
	eg.Go(func() error { return g.lead(ctx) })
	return eg.Wait()
}

// auditor is the stream runner that dead-letters t's records that break
// its contract.
func (g *Guard) auditor(t Table) (*stream.Runner, error) {
	sc := g.cfg.Audit
	sc.Name, sc.Brokers, sc.Topic, sc.GroupID = AgentName+"-"+t.Store, g.cfg.Brokers, t.Topic, g.cfg.AuditGroup+"-"+t.Store
	log := g.log.With("table", t.Store)
	return stream.New(sc, g.d.Dialer, g.d.Admin, g.d.Writer, func(stream.Partition) stream.Processor {
		return &audit{t: t, log: log, agent: sc.Name}
	}, g.d.Metrics, g.log)
}

// audit is the audit's processor for one partition.
type audit struct {
	t     Table
	agent string
	log   *slog.Logger
}

func (a *audit) Process(m *kafka.Message, out *stream.Output) {
	if err := a.t.Check(m.Value); err != nil {
		out.Emit(agents.DeadLetter(a.t.DeadLetterTopic, a.agent, m, wire.ReasonContract, err.Error()))
	}
}

func (a *audit) Rejected(m kafka.Message, in *kafka.Message, cause error, _ *stream.Output) {
	a.log.Error("dead letter refused by kafka", "topic", m.Topic, "bytes", len(m.Value), "err", cause)
}
