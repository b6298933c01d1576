package cli

import (
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/internal/feed"
	"github.com/domination/domination/internal/status"
	"github.com/domination/domination/internal/web"
	"github.com/domination/domination/internal/worker"
	"github.com/domination/domination/wire"
)

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run every agent and the web server (/healthz, /ready, /metrics); more workers share the partitions",
		Description: `Consumes ratings from the ratings topic in a consumer group, classifies them
and produces shadow events; consumes visits, re-keys them by (account_id,
store_id) and emits distinct-visit counts per tumbling window to the
active-visitors topic. Bad input goes to the dead-letter topics. An input
offset is committed only after its outputs are acknowledged by Kafka. SIGINT or
SIGTERM drains the current batches and commits within --shutdown-timeout.`,
		Flags: slices.Concat([]cli.Flag{
			&cli.StringFlag{Name: "web-host", Usage: "address the web server listens on (empty: all interfaces)", EnvVars: env("WEB_HOST")},
			&cli.IntFlag{Name: "web-port", Value: web.DefaultPort, Usage: "port of the web server", EnvVars: env("WEB_PORT")},
		}, agentFlags(), []cli.Flag{
			&cli.IntFlag{Name: "repartition-partitions", Value: agents.DefaultRepartitionPartitions, Usage: "partitions of the repartition topic when the worker creates it", EnvVars: env("REPARTITION_PARTITIONS")},
			&cli.StringFlag{Name: "repartition-format", Value: agents.DefaultRepartitionFormat, Usage: "form of the repartition topic's values: compact, or json while a worker of a version before compact still runs (every version reads both)", EnvVars: env("REPARTITION_FORMAT")},
		}, windowFlags("tumbling window size (whole seconds)", "how long after a window's end, in event time, visits still count in it"), []cli.Flag{
			&cli.DurationFlag{Name: "max-clock-skew", Value: agents.DefaultMaxClockSkew, Usage: "how far ahead of this worker's clock a visit or rating may be stamped; beyond it, it is dead-lettered as future_timestamp", EnvVars: env("MAX_CLOCK_SKEW")},
			&cli.Int64Flag{Name: "min-rating", Value: wire.DefaultMinRating, Usage: "smallest accepted rating", EnvVars: env("MIN_RATING")},
			&cli.Int64Flag{Name: "max-rating", Value: wire.DefaultMaxRating, Usage: "largest accepted rating", EnvVars: env("MAX_RATING")},
			&cli.IntFlag{Name: "max-batch", Value: agents.DefaultMaxBatch, Usage: "records per produce-and-commit cycle, per partition", EnvVars: env("MAX_BATCH")},
			&cli.DurationFlag{Name: "max-wait", Value: agents.DefaultMaxWait, Usage: "how long a batch gathers after its first record", EnvVars: env("MAX_WAIT")},
			&cli.StringSliceFlag{Name: "allowed-origin", Usage: "origin allowed to open the WebSocket feed besides the worker's own host (repeatable; * for any)", EnvVars: env("ALLOWED_ORIGINS")},
			&cli.IntFlag{Name: "max-clients", Value: feed.DefaultMaxClients, Usage: "most WebSocket clients at once", EnvVars: env("MAX_CLIENTS")},
			&cli.DurationFlag{Name: "stall-after", Value: status.DefaultStallAfter, Usage: "how long records may wait with the committed offset unmoved before /status and the metrics call a stage stalled", EnvVars: env("STALL_AFTER")},
			&cli.IntFlag{Name: "history", Value: feed.DefaultHistoryWindows, Usage: "recent windows sent to a WebSocket client on connect and on setFilter (a client may ask ?history=N)", EnvVars: env("HISTORY")},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: worker.DefaultShutdownTimeout, Usage: "deadline for draining and committing on stop", EnvVars: env("SHUTDOWN_TIMEOUT")},
		}, guardFlags(), webSecurityFlags()),
		Action: runWorker,
	}
}

func runWorker(c *cli.Context) error {
	log, kc, err := loggerAndKafka(c)
	if err != nil {
		return err
	}
	limits := wire.DefaultRatingLimits()
	limits.MinRating, limits.MaxRating = c.Int64("min-rating"), c.Int64("max-rating")
	cfg := worker.Config{
		Kafka: kc,
		Shadow: agents.ShadowConfig{
			InputTopic:      global(c, "ratings-topic"),
			OutputTopic:     global(c, "shadow-topic"),
			DeadLetterTopic: global(c, "ratings-dlq-topic"),
			GroupID:         c.String("shadow-group"),
			Limits:          limits,
			MaxClockSkew:    clockSkew(c),
			Batching:        agents.Batching{MaxBatch: c.Int("max-batch"), MaxWait: c.Duration("max-wait")},
		},
		Visits: agents.VisitsConfig{
			InputTopic:            global(c, "visits-topic"),
			RepartitionTopic:      c.String("repartition-topic"),
			RepartitionPartitions: c.Int("repartition-partitions"),
			RepartitionFormat:     c.String("repartition-format"),
			OutputTopic:           global(c, "active-visitors-topic"),
			DeadLetterTopic:       global(c, "visits-dlq-topic"),
			GroupID:               c.String("visits-group"),
			Window:                c.Duration("window"),
			Grace:                 c.Duration("grace"),
			MaxClockSkew:          clockSkew(c),
			Batching:              agents.Batching{MaxBatch: c.Int("max-batch"), MaxWait: c.Duration("max-wait")},
		},
		Web:             web.Config{Host: c.String("web-host"), Port: c.Int("web-port")},
		Status:          status.Config{StallAfter: c.Duration("stall-after")},
		ShutdownTimeout: c.Duration("shutdown-timeout"),
	}
	cfg.Guard = guardConfig(c)
	if err := webSecurity(c, &cfg.Web); err != nil {
		return err
	}
	chc, err := clickhouseConfig(c)
	if err != nil {
		return err
	}
	cfg.ClickHouse = chc
	cfg.Feed = feed.Config{
		AllowedOrigins: c.StringSlice("allowed-origin"),
		MaxClients:     c.Int("max-clients"),
		HistoryWindows: c.Int("history"),
	}
	w, err := worker.New(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process the default way
	}()
	return w.Run(ctx)
}

// clockSkew reads --max-clock-skew: 0 there means nothing ahead of the
// clock, which the agents' configuration spells as a negative skew (its 0
// is the default).
func clockSkew(c *cli.Context) time.Duration {
	if d := c.Duration("max-clock-skew"); d != 0 {
		return d
	}
	return -1
}
