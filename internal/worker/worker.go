// Package worker assembles a domination worker process: the agents, the
// Kafka writer they share, the metrics and the web server, under one root
// context with a bounded shutdown.
package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/backoff"
	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/dashboard"
	"github.com/domination/domination/internal/feed"
	"github.com/domination/domination/internal/guard"
	"github.com/domination/domination/internal/rollup"
	"github.com/domination/domination/internal/status"
	"github.com/domination/domination/internal/web"
	"github.com/domination/domination/metrics"
)

// DefaultShutdownTimeout bounds a worker's whole stop.
const DefaultShutdownTimeout = 30 * time.Second

// Config configures a worker.
type Config struct {
	// Kafka is how to reach the brokers.
	Kafka broker.Config
	// Shadow configures the shadow agent.
	Shadow agents.ShadowConfig
	// Visits configures the visit agents (re-keying and windows).
	Visits agents.VisitsConfig
	// Web configures the HTTP server (port web.DefaultPort by default).
	Web web.Config
	// ClickHouse is where the feed reads history and /ready checks.
	ClickHouse clickhouse.Config
	// Feed configures the WebSocket feed on /ws; its Brokers, Dialer and
	// Topic (Visits.OutputTopic) are filled in by the worker, and feed.New
	// applies its defaults.
	Feed feed.Config
	// Status configures GET /status and the domination_clickhouse_*
	// metrics; its Shadow, Visits and Ready are filled in by the worker,
	// and status.New applies its defaults.
	Status status.Config
	// Guard keeps ClickHouse's Kafka engine tables moving past records
	// they cannot store; its Brokers are filled in by the worker, and its
	// Tables default to the two the migrations create.
	Guard guard.Config
	// Rollup keeps the seals that answer queries without FINAL over
	// history (see internal/rollup); every worker runs it.
	Rollup rollup.Config
	// ShutdownTimeout bounds the whole stop: draining batches, committing,
	// leaving the groups and closing the server. Overrunning it is an
	// error. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Producer is the shared producer's; the agents hand it whole
	// batches, which it sends at once. Defaults as broker.ProducerConfig's.
	Producer broker.ProducerConfig
}

// WithDefaults returns c with its zero (and negative) fields set to the
// documented defaults.
func (c Config) WithDefaults() Config {
	c.Kafka = c.Kafka.WithDefaults()
	c.Shadow = c.Shadow.WithDefaults()
	c.Visits = c.Visits.WithDefaults()
	c.Web = c.Web.WithDefaults()
	c.ClickHouse = c.ClickHouse.WithDefaults()
	c.Guard = c.Guard.WithDefaults()
	c.Rollup = c.Rollup.WithDefaults()
	c.ShutdownTimeout = cmp.Or(max(c.ShutdownTimeout, 0), DefaultShutdownTimeout)
	c.Producer = c.Producer.WithDefaults()
	return c
}

// Validate reports the first setting that cannot work. It applies no
// defaults.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	if err := c.Shadow.Validate(); err != nil {
		return err
	}
	if err := c.Visits.Validate(); err != nil {
		return err
	}
	if err := c.ClickHouse.Validate(); err != nil {
		return err
	}
	if err := c.guard().Validate(); err != nil {
		return err
	}
	if err := c.Rollup.Validate(); err != nil {
		return err
	}
	if err := c.Producer.Validate(); err != nil {
		return err
	}
	return c.Web.Validate()
}

// guard is the guard's configuration with what the worker fills in: the
// brokers, and the migrations' two engine tables unless Tables are set.
func (c Config) guard() guard.Config {
	gc := c.Guard
	gc.Brokers = c.Kafka.Brokers
	if len(gc.Tables) == 0 {
		gc.Tables = guard.Tables(clickhouse.KafkaSource{}, "", "")
	}
	return gc
}

// Worker runs every agent and the web server.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics.Metrics
}

// New returns a Worker; Run starts it.
func New(cfg Config, log *slog.Logger) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg, log: log, metrics: metrics.New()}, nil
}

// Metrics returns the worker's metrics (tests read them).
func (w *Worker) Metrics() *metrics.Metrics { return w.metrics }

// NewWriter returns the producer every agent shares: every record is
// acknowledged by all in-sync replicas before its input is committed.
func NewWriter(cfg broker.Config, pc broker.ProducerConfig) (*broker.Producer, error) {
	return broker.NewProducer(cfg, pc)
}

// Run serves until ctx ends, then stops within Config.ShutdownTimeout.
func (w *Worker) Run(ctx context.Context) error {
	cfg := w.cfg
	dialer, err := cfg.Kafka.Dialer()
	if err != nil {
		return err
	}
	writer, err := NewWriter(cfg.Kafka, cfg.Producer)
	if err != nil {
		return err
	}
	admin, err := cfg.Kafka.Client()
	if err != nil {
		return err
	}
	rt := agents.Runtime{Brokers: cfg.Kafka.Brokers, Dialer: dialer, Admin: admin, Writer: writer, Metrics: w.metrics, Log: w.log}
	shadow, err := agents.NewShadow(cfg.Shadow, rt)
	if err != nil {
		return err
	}
	visits, err := agents.NewVisits(cfg.Visits, rt)
	if err != nil {
		return err
	}
	chConn, err := clickhouse.Connect(cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer chConn.Close()
	fc := cfg.Feed
	fc.Brokers, fc.Dialer, fc.Topic = cfg.Kafka.Brokers, dialer, cfg.Visits.OutputTopic
	live, err := feed.New(fc, feed.NewClickHouseHistory(chConn), w.log, w.metrics)
	if err != nil {
		return err
	}
	webCfg := cfg.Web
	webCfg.Ready = live.Ready
	webCfg.Handlers = map[string]http.Handler{"/ws": live.Handler()}
	sc := cfg.Status
	sc.Shadow, sc.Visits, sc.Ready = cfg.Shadow, cfg.Visits, webCfg.Ready
	// Count the guard's dead letters; its groups serve until ClickHouse
	// names the engines' own.
	for _, t := range cfg.Guard.Tables {
		switch t.Store {
		case "shadow":
			sc.ShadowDeadLetterTopic, sc.Engines.ShadowTopic, sc.Engines.ShadowGroup = t.DeadLetterTopic, t.Topic, t.Group
		case "active_visitors":
			sc.ActiveVisitorsDeadLetterTopic, sc.Engines.ActiveVisitorsTopic, sc.Engines.ActiveVisitorsGroup = t.DeadLetterTopic, t.Topic, t.Group
		}
	}
	watch, err := status.New(sc, admin, chConn, w.metrics.Registry, w.log)
	if err != nil {
		return err
	}
	webCfg.Handlers["/status"] = watch.Handler()
	// The page is static and public; its data calls need a token, as /status.
	webCfg.Handlers["/api/shadow"] = dashboard.ShadowHandler(chConn, w.log)
	webCfg.Public = map[string]http.Handler{"/": dashboard.Handler()}
	srv, err := web.New(webCfg, w.metrics.Registry, w.log)
	if err != nil {
		return err
	}

	grd, err := guard.New(cfg.guard(), guard.Deps{Dialer: dialer, Admin: admin, Writer: writer, CH: chConn,
		Metrics: w.metrics, Registry: w.metrics.Registry, Log: w.log})
	if err != nil {
		return err
	}

	sealer, err := rollup.New(cfg.Rollup, chConn, w.log)
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return sealer.Run(gctx) })
	g.Go(func() error { return watch.Run(gctx) })
	// Kafka may not be up yet: say so and wait for it, rather than exit.
	topics := make(chan struct{})
	g.Go(func() error {
		err := backoff.Retry(gctx, w.log, backoff.Config{}, "ensure kafka topics", func(ctx context.Context) error {
			tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			// Creates with cfg.Kafka.Replication; warns of topics on which RequireAll may rest on one broker.
			return cfg.Kafka.PrepareTopics(tctx, admin, w.log, agentTopics(cfg.Shadow.Topics(), cfg.Visits.Topics())...)
		})
		if err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return err
		}
		close(topics)
		return nil
	})
	after := func(run func(context.Context) error) func() error {
		return func() error {
			select {
			case <-topics:
				return run(gctx)
			case <-gctx.Done():
				return nil
			}
		}
	}
	g.Go(after(func(ctx context.Context) error {
		w.log.Info("shadow agent starting", "input", cfg.Shadow.InputTopic, "output", cfg.Shadow.OutputTopic, "dlq", cfg.Shadow.DeadLetterTopic)
		return shadow.Run(ctx)
	}))
	g.Go(after(live.Run))
	g.Go(after(grd.Run))
	g.Go(after(func(ctx context.Context) error {
		w.log.Info("visits agents starting", "input", cfg.Visits.InputTopic, "repartition", cfg.Visits.RepartitionTopic,
			"output", cfg.Visits.OutputTopic, "dlq", cfg.Visits.DeadLetterTopic, "window", cfg.Visits.Window, "grace", cfg.Visits.Grace)
		return visits.Run(ctx)
	}))

	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		return w.close(writer, err)
	case <-ctx.Done():
	}
	w.log.Info("stopping: draining batches", "deadline", cfg.ShutdownTimeout)
	t := time.NewTimer(cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return w.close(writer, err)
	case <-t.C:
		return fmt.Errorf("shutdown did not finish within %s", cfg.ShutdownTimeout)
	}
}

func (w *Worker) close(writer *broker.Producer, err error) error {
	if cerr := writer.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close kafka writer: %w", cerr)
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if err == nil {
		w.log.Info("stopped cleanly")
	}
	return err
}

// agentTopics lists the agents' topics as the broker creates them.
func agentTopics(lists ...[]agents.Topic) []broker.Topic {
	var out []broker.Topic
	for _, l := range lists {
		for _, t := range l {
			out = append(out, broker.Topic(t))
		}
	}
	return out
}
