package cli

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/tlsconfig"
)

// Flag categories, so --help groups them.
const (
	catLog        = "Logging"
	catKafka      = "Kafka"
	catClickHouse = "ClickHouse"
	catTopics     = "Topics"
)

func env(name string) []string { return []string{"DOMINATION_" + name} }

// globalFlags are accepted before any subcommand and hold every address and
// secret, so all commands agree on them.
func globalFlags() []cli.Flag {
	return slices.Concat(logFlags(), tlsFlags("kafka", "Kafka", "", true, catKafka), []cli.Flag{
		&cli.StringFlag{Name: "kafka-brokers", Value: broker.DefaultBroker, Usage: "Kafka bootstrap brokers, comma-separated host:port", EnvVars: env("KAFKA_BROKERS"), Category: catKafka},
		&cli.StringFlag{Name: "kafka-sasl-mechanism", Usage: "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: none)", EnvVars: env("KAFKA_SASL_MECHANISM"), Category: catKafka},
		&cli.StringFlag{Name: "kafka-sasl-username", Usage: "SASL username", EnvVars: env("KAFKA_SASL_USERNAME"), Category: catKafka},
		&cli.StringFlag{Name: "kafka-sasl-password", Usage: "SASL password (prefer the environment variable)", EnvVars: env("KAFKA_SASL_PASSWORD"), Category: catKafka},

		&cli.StringFlag{Name: "clickhouse-addr", Value: clickhouse.DefaultAddr, Usage: "ClickHouse native-protocol addresses, comma-separated host:port", EnvVars: env("CLICKHOUSE_ADDR"), Category: catClickHouse},
		&cli.StringFlag{Name: "clickhouse-database", Value: clickhouse.DefaultDatabase, Usage: "ClickHouse database holding domination's tables", EnvVars: env("CLICKHOUSE_DATABASE"), Category: catClickHouse},
		&cli.StringFlag{Name: "clickhouse-user", Value: clickhouse.DefaultUsername, Usage: "ClickHouse user", EnvVars: env("CLICKHOUSE_USER"), Category: catClickHouse},
		&cli.StringFlag{Name: "clickhouse-password", Usage: "ClickHouse password (prefer the environment variable)", EnvVars: env("CLICKHOUSE_PASSWORD"), Category: catClickHouse},

		&cli.StringFlag{Name: "ratings-topic", Value: agents.DefaultShadowInputTopic, Usage: "topic of incoming ratings", EnvVars: env("RATINGS_TOPIC"), Category: catTopics},
		&cli.StringFlag{Name: "shadow-topic", Value: agents.DefaultShadowOutputTopic, Usage: "topic of typed shadow events, read by ClickHouse", EnvVars: env("SHADOW_TOPIC"), Category: catTopics},
		&cli.StringFlag{Name: "ratings-dlq-topic", Value: agents.DefaultShadowDeadLetterTopic, Usage: "dead-letter topic for refused ratings", EnvVars: env("RATINGS_DLQ_TOPIC"), Category: catTopics},
		&cli.StringFlag{Name: "visits-topic", Value: agents.DefaultVisitsInputTopic, Usage: "topic of incoming visits", EnvVars: env("VISITS_TOPIC"), Category: catTopics},
		&cli.StringFlag{Name: "visits-dlq-topic", Value: agents.DefaultVisitsDeadLetterTopic, Usage: "dead-letter topic for refused and late visits", EnvVars: env("VISITS_DLQ_TOPIC"), Category: catTopics},
		&cli.StringFlag{Name: "active-visitors-topic", Value: agents.DefaultActiveVisitorsTopic, Usage: "topic of windowed visit counts, read by ClickHouse", EnvVars: env("ACTIVE_VISITORS_TOPIC"), Category: catTopics},
		&cli.IntFlag{Name: "topic-replication-factor", Usage: fmt.Sprintf("replicas of each topic domination creates (0: %d on a cluster of at least %d brokers, else %d)", broker.ClusterReplicationFactor, broker.ClusterBrokers, broker.SingleReplicationFactor), EnvVars: env("TOPIC_REPLICATION_FACTOR"), Category: catTopics},
		&cli.IntFlag{Name: "topic-min-insync-replicas", Usage: fmt.Sprintf("min.insync.replicas of each topic domination creates (0: %d when it has at least %d replicas, else %d)", broker.ClusterMinInSync, broker.ClusterReplicationFactor, broker.SingleMinInSync), EnvVars: env("TOPIC_MIN_INSYNC_REPLICAS"), Category: catTopics},
	}, tlsFlags("clickhouse", "ClickHouse", " (use its secure native port, usually 9440)", false, catClickHouse))
}

// tlsFlags are the global flags of a TLS connection to what:
// --<prefix>-tls (its usage ended by note), -tls-ca and -tls-insecure, and
// with mutual a client certificate and key, -tls-cert and -tls-key.
func tlsFlags(prefix, what, note string, mutual bool, category string) []cli.Flag {
	name := func(suffix string) (string, []string) {
		n := prefix + "-tls" + suffix
		return n, env(strings.ToUpper(strings.ReplaceAll(n, "-", "_")))
	}
	flag := func(suffix, usage string, isBool bool) cli.Flag {
		n, ev := name(suffix)
		if isBool {
			return &cli.BoolFlag{Name: n, Usage: usage, EnvVars: ev, Category: category}
		}
		return &cli.StringFlag{Name: n, Usage: usage, EnvVars: ev, Category: category}
	}
	flags := []cli.Flag{
		flag("", "connect to "+what+" with TLS"+note, true),
		flag("-ca", "PEM file of CAs to trust for "+what+" (implies --"+prefix+"-tls)", false),
		flag("-insecure", "accept any "+what+" server certificate (tests only)", true),
	}
	if mutual {
		flags = append(flags,
			flag("-cert", "PEM client certificate for "+what+" mutual TLS", false),
			flag("-key", "PEM client key for "+what+" mutual TLS", false))
	}
	return flags
}

// tlsFlagsConfig reads the flags tlsFlags made.
func tlsFlagsConfig(c *cli.Context, prefix string, mutual bool) tlsconfig.Config {
	tc := tlsconfig.Config{
		Enabled:            globalBool(c, prefix+"-tls"),
		CAFile:             global(c, prefix+"-tls-ca"),
		InsecureSkipVerify: globalBool(c, prefix+"-tls-insecure"),
	}
	if mutual {
		tc.CertFile, tc.KeyFile = global(c, prefix+"-tls-cert"), global(c, prefix+"-tls-key")
	}
	return tc
}

// logFlags are global, like every flag in globalFlags, and so are accepted
// after the subcommand too: both `domination -l debug worker` and the
// original's `domination worker -l info` work; the innermost one given wins.
func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "loglevel", Aliases: []string{"l"}, Value: "info", Usage: "log level: debug, info, warn, error", EnvVars: env("LOG_LEVEL"), Category: catLog},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json", EnvVars: env("LOG_FORMAT"), Category: catLog},
	}
}

// agentFlags are the agents' consumer groups and repartition topic: the
// worker runs with them, status watches what they name.
func agentFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "shadow-group", Value: agents.DefaultShadowGroupID, Usage: "consumer group of the shadow agent", EnvVars: env("SHADOW_GROUP")},
		&cli.StringFlag{Name: "visits-group", Value: agents.DefaultVisitsGroupID, Usage: "consumer group of the visits agent (the window stage uses it with -windows appended)", EnvVars: env("VISITS_GROUP")},
		&cli.StringFlag{Name: "repartition-topic", Value: agents.DefaultRepartitionTopic, Usage: "topic of visits keyed by (account_id, store_id)", EnvVars: env("REPARTITION_TOPIC")},
	}
}

// windowFlags are the visit windows' size and grace, with the usage each
// command gives them.
func windowFlags(windowUsage, graceUsage string) []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "window", Value: agents.DefaultWindow, Usage: windowUsage, EnvVars: env("WINDOW")},
		&cli.DurationFlag{Name: "grace", Value: agents.DefaultGrace, Usage: graceUsage, EnvVars: env("GRACE")},
	}
}

// engineGroupFlags are the consumer groups of the Kafka engine tables
// (migrate writes them, the guard and status watch them); note ends each
// usage.
func engineGroupFlags(note, category string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "shadow-consumer-group", Value: clickhouse.DefaultShadowGroup, Usage: "Kafka consumer group of the shadow_stream table" + note, EnvVars: env("SHADOW_CONSUMER_GROUP"), Category: category},
		&cli.StringFlag{Name: "active-visitors-consumer-group", Value: clickhouse.DefaultActiveVisitorsGroup, Usage: "Kafka consumer group of the active_visitors_stream table" + note, EnvVars: env("ACTIVE_VISITORS_CONSUMER_GROUP"), Category: category},
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// kafkaConfig reads the global Kafka flags.
func kafkaConfig(c *cli.Context) (broker.Config, error) {
	cfg := broker.Config{
		Brokers: splitList(global(c, "kafka-brokers")),
		TLS:     tlsFlagsConfig(c, "kafka", true),
		SASL: broker.SASL{
			Mechanism: global(c, "kafka-sasl-mechanism"),
			Username:  global(c, "kafka-sasl-username"),
			Password:  global(c, "kafka-sasl-password"),
		},
		Replication: broker.Replication{
			Factor:    innermost(c, "topic-replication-factor").Int("topic-replication-factor"),
			MinInSync: innermost(c, "topic-min-insync-replicas").Int("topic-min-insync-replicas"),
		},
	}.WithDefaults()
	return cfg, cfg.Validate()
}

// loggerAndKafka returns the logger and reads the global Kafka flags, for
// the commands that use Kafka alone.
func loggerAndKafka(c *cli.Context) (*slog.Logger, broker.Config, error) {
	log, err := newLogger(c)
	if err != nil {
		return nil, broker.Config{}, err
	}
	kc, err := kafkaConfig(c)
	return log, kc, err
}

// serviceConfigs reads the global Kafka and ClickHouse flags.
func serviceConfigs(c *cli.Context) (broker.Config, clickhouse.Config, error) {
	kc, err := kafkaConfig(c)
	if err != nil {
		return kc, clickhouse.Config{}, err
	}
	chc, err := clickhouseConfig(c)
	return kc, chc, err
}

// clickhouseConfig reads the global ClickHouse flags.
func clickhouseConfig(c *cli.Context) (clickhouse.Config, error) {
	tc, err := tlsFlagsConfig(c, "clickhouse", false).Build()
	if err != nil {
		return clickhouse.Config{}, fmt.Errorf("clickhouse %w", err)
	}
	cfg := clickhouse.Config{
		Addr:     splitList(global(c, "clickhouse-addr")),
		Database: global(c, "clickhouse-database"),
		Username: global(c, "clickhouse-user"),
		Password: global(c, "clickhouse-password"),
		TLS:      tc,
	}.WithDefaults()
	return cfg, cfg.Validate()
}
