package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/broker"
)

func migrateCommand() *cli.Command {
	flags := slices.Concat([]cli.Flag{
		&cli.StringFlag{Name: "clickhouse-kafka-brokers", Usage: "broker list as the ClickHouse server reaches it, written into the Kafka engine tables (default: --kafka-brokers)", EnvVars: env("CLICKHOUSE_KAFKA_BROKERS")},
	}, engineGroupFlags("", ""), []cli.Flag{
		&cli.IntFlag{Name: "kafka-num-consumers", Value: clickhouse.DefaultNumConsumers, Usage: "kafka_num_consumers of each Kafka engine table", EnvVars: env("KAFKA_NUM_CONSUMERS")},
		&cli.IntFlag{Name: "shadow-partitions", Value: broker.SharedPartitions, Usage: "partitions of the shadow topic when migrate creates it", EnvVars: env("SHADOW_PARTITIONS")},
		&cli.StringFlag{Name: "cluster", Usage: "ClickHouse cluster (a <remote_servers> name) to migrate on every server of: ON CLUSTER DDL, replicated tables (empty: the one server reached)", EnvVars: env("CLICKHOUSE_CLUSTER")},
		&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "bound on the whole migration"},
	})
	return &cli.Command{
		Name:  "migrate",
		Usage: "create, inspect or remove domination's ClickHouse tables (golang-migrate, SQL embedded in the binary)",
		Description: `The migrations create the Kafka engine tables (shadow_stream,
active_visitors_stream), the ReplacingMergeTree stores (shadow, active_visitors)
and the materialized views between them. "up" first creates the topics the
engine tables read, because ClickHouse never picks up a topic created after its
table, and points the engine's consumer groups at the start of those topics.`,
		Subcommands: []*cli.Command{
			{Name: "up", Usage: "apply every pending migration", Flags: flags, Action: func(c *cli.Context) error {
				return withMigrator(c, true, func(ctx context.Context, m *clickhouse.Migrator, log *slog.Logger) error {
					if err := m.Up(ctx); err != nil {
						return err
					}
					return printVersion(ctx, c, m)
				})
			}},
			{Name: "down", Usage: "revert every migration: drop all the tables and views up created", Flags: flags, Action: func(c *cli.Context) error {
				return withMigrator(c, false, func(ctx context.Context, m *clickhouse.Migrator, _ *slog.Logger) error {
					if err := m.Down(ctx); err != nil {
						return err
					}
					return printVersion(ctx, c, m)
				})
			}},
			{Name: "version", Usage: "print the applied version and whether it is dirty", Flags: flags, Action: func(c *cli.Context) error {
				return withMigrator(c, false, func(ctx context.Context, m *clickhouse.Migrator, _ *slog.Logger) error {
					return printVersion(ctx, c, m)
				})
			}},
			{Name: "force", Usage: "set the version without running anything (recovers a dirty version after a manual fix)", ArgsUsage: "VERSION", Flags: flags, Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("migrate force takes one VERSION argument (see --help)")
				}
				v, err := strconv.Atoi(c.Args().First())
				if err != nil || v < -1 {
					return fmt.Errorf("migrate force: %q is not a version number", c.Args().First())
				}
				return withMigrator(c, false, func(ctx context.Context, m *clickhouse.Migrator, _ *slog.Logger) error {
					if err := m.Force(ctx, v); err != nil {
						return err
					}
					return printVersion(ctx, c, m)
				})
			}},
		},
	}
}

func printVersion(ctx context.Context, c *cli.Context, m *clickhouse.Migrator) error {
	v, dirty, err := m.Version(ctx)
	if errors.Is(err, clickhouse.ErrNoVersion) {
		fmt.Fprintln(c.App.Writer, "version: none (no migration applied)")
		return nil
	}
	if err != nil {
		return err
	}
	if dirty {
		fmt.Fprintf(c.App.Writer, "version: %d (dirty: a migration failed; fix it, then `migrate force %d`)\n", v, v)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "version: %d\n", v)
	return nil
}

// withMigrator connects to ClickHouse (first, so a stopped server fails
// fast), and for up also prepares Kafka, then runs fn.
func withMigrator(c *cli.Context, up bool, fn func(context.Context, *clickhouse.Migrator, *slog.Logger) error) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	kc, chc, err := serviceConfigs(c)
	if err != nil {
		return err
	}
	src := clickhouse.KafkaSource{
		Brokers:             c.String("clickhouse-kafka-brokers"),
		ShadowTopic:         global(c, "shadow-topic"),
		ShadowGroup:         c.String("shadow-consumer-group"),
		ActiveVisitorsTopic: global(c, "active-visitors-topic"),
		ActiveVisitorsGroup: c.String("active-visitors-consumer-group"),
		NumConsumers:        c.Int("kafka-num-consumers"),
	}
	if src.Brokers == "" {
		src.Brokers = global(c, "kafka-brokers")
	}
	if err := src.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()

	if up {
		if err := clickhouse.EnsureDatabaseOnCluster(ctx, chc, c.String("cluster")); err != nil {
			return err
		}
	}
	conn, err := clickhouse.Open(ctx, chc)
	if err != nil {
		return err
	}
	defer conn.Close()
	if up {
		if err := prepareKafka(ctx, log, kc, src, c.Int("shadow-partitions")); err != nil {
			return err
		}
	}
	m, err := clickhouse.NewMigrator(conn, chc.Database, src, log)
	if err != nil {
		return err
	}
	defer m.Close()
	if cluster := c.String("cluster"); cluster != "" {
		if err := m.OnCluster(cluster); err != nil {
			return err
		}
	}
	return fn(ctx, m, log)
}

// prepareKafka creates the topics the Kafka engine tables read and seeds
// their consumer groups at the start of those topics.
func prepareKafka(ctx context.Context, log *slog.Logger, kc broker.Config, src clickhouse.KafkaSource, shadowPartitions int) error {
	client, err := kc.Client()
	if err != nil {
		return err
	}
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := broker.Ping(kctx, client); err != nil {
		return fmt.Errorf("migrate up creates the topics its tables read first: %w", err)
	}
	if err := kc.PrepareTopics(kctx, client, log,
		broker.Topic{Name: src.ShadowTopic, Partitions: shadowPartitions},
		// One partition: the counts are collated in one place.
		broker.Topic{Name: src.ActiveVisitorsTopic, Partitions: broker.SinglePartition},
	); err != nil {
		return err
	}
	for _, g := range []struct{ group, topic string }{{src.ShadowGroup, src.ShadowTopic}, {src.ActiveVisitorsGroup, src.ActiveVisitorsTopic}} {
		err := broker.SeedGroupAtStart(kctx, client, g.group, g.topic)
		if errors.Is(err, broker.ErrGroupActive) {
			log.Warn("kafka engine group already consuming; its offsets are left as they are", "group", g.group, "topic", g.topic)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}
