package cli

import (
	"fmt"
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

// The agents' defaults, which the flags of their topics, groups and windows
// show.
var (
	shadowDefaults = agents.ShadowConfig{}.WithDefaults()
	visitsDefaults = agents.VisitsConfig{}.WithDefaults()
)

func env(name string) []string { return []string{"DOMINATION_" + name} }

// globalFlags are accepted before any subcommand and hold every address and
// secret, so all commands agree on them.
func globalFlags() []cli.Flag {
	return append(logFlags(), []cli.Flag{

		&cli.StringFlag{Name: "kafka-brokers", Value: broker.DefaultBroker, Usage: "Kafka bootstrap brokers, comma-separated host:port", EnvVars: env("KAFKA_BROKERS"), Category: catKafka},
		&cli.BoolFlag{Name: "kafka-tls", Usage: "connect to Kafka with TLS", EnvVars: env("KAFKA_TLS"), Category: catKafka},
		&cli.StringFlag{Name: "kafka-tls-ca", Usage: "PEM file of CAs to trust for Kafka (implies --kafka-tls)", EnvVars: env("KAFKA_TLS_CA"), Category: catKafka},
		&cli.StringFlag{Name: "kafka-tls-cert", Usage: "PEM client certificate for Kafka mutual TLS", EnvVars: env("KAFKA_TLS_CERT"), Category: catKafka},
		&cli.StringFlag{Name: "kafka-tls-key", Usage: "PEM client key for Kafka mutual TLS", EnvVars: env("KAFKA_TLS_KEY"), Category: catKafka},
		&cli.BoolFlag{Name: "kafka-tls-insecure", Usage: "accept any Kafka server certificate (tests only)", EnvVars: env("KAFKA_TLS_INSECURE"), Category: catKafka},
		&cli.StringFlag{Name: "kafka-sasl-mechanism", Usage: "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: none)", EnvVars: env("KAFKA_SASL_MECHANISM"), Category: catKafka},
		&cli.StringFlag{Name: "kafka-sasl-username", Usage: "SASL username", EnvVars: env("KAFKA_SASL_USERNAME"), Category: catKafka},
		&cli.StringFlag{Name: "kafka-sasl-password", Usage: "SASL password (prefer the environment variable)", EnvVars: env("KAFKA_SASL_PASSWORD"), Category: catKafka},

		&cli.StringFlag{Name: "clickhouse-addr", Value: clickhouse.DefaultAddr, Usage: "ClickHouse native-protocol addresses, comma-separated host:port", EnvVars: env("CLICKHOUSE_ADDR"), Category: catClickHouse},
		&cli.StringFlag{Name: "clickhouse-database", Value: clickhouse.DefaultDatabase, Usage: "ClickHouse database holding domination's tables", EnvVars: env("CLICKHOUSE_DATABASE"), Category: catClickHouse},
		&cli.StringFlag{Name: "clickhouse-user", Value: clickhouse.DefaultUsername, Usage: "ClickHouse user", EnvVars: env("CLICKHOUSE_USER"), Category: catClickHouse},
		&cli.StringFlag{Name: "clickhouse-password", Usage: "ClickHouse password (prefer the environment variable)", EnvVars: env("CLICKHOUSE_PASSWORD"), Category: catClickHouse},
		&cli.BoolFlag{Name: "clickhouse-tls", Usage: "connect to ClickHouse with TLS (use its secure native port, usually 9440)", EnvVars: env("CLICKHOUSE_TLS"), Category: catClickHouse},
		&cli.StringFlag{Name: "clickhouse-tls-ca", Usage: "PEM file of CAs to trust for ClickHouse (implies --clickhouse-tls)", EnvVars: env("CLICKHOUSE_TLS_CA"), Category: catClickHouse},
		&cli.BoolFlag{Name: "clickhouse-tls-insecure", Usage: "accept any ClickHouse server certificate (tests only)", EnvVars: env("CLICKHOUSE_TLS_INSECURE"), Category: catClickHouse},

		&cli.StringFlag{Name: "ratings-topic", Value: shadowDefaults.InputTopic, Usage: "topic of incoming ratings", EnvVars: env("RATINGS_TOPIC"), Category: catTopics},
		&cli.StringFlag{Name: "shadow-topic", Value: shadowDefaults.OutputTopic, Usage: "topic of typed shadow events, read by ClickHouse", EnvVars: env("SHADOW_TOPIC"), Category: catTopics},
		&cli.StringFlag{Name: "ratings-dlq-topic", Value: shadowDefaults.DeadLetterTopic, Usage: "dead-letter topic for refused ratings", EnvVars: env("RATINGS_DLQ_TOPIC"), Category: catTopics},
		&cli.StringFlag{Name: "visits-topic", Value: visitsDefaults.InputTopic, Usage: "topic of incoming visits", EnvVars: env("VISITS_TOPIC"), Category: catTopics},
		&cli.StringFlag{Name: "visits-dlq-topic", Value: visitsDefaults.DeadLetterTopic, Usage: "dead-letter topic for refused and late visits", EnvVars: env("VISITS_DLQ_TOPIC"), Category: catTopics},
		&cli.StringFlag{Name: "active-visitors-topic", Value: visitsDefaults.OutputTopic, Usage: "topic of windowed visit counts, read by ClickHouse", EnvVars: env("ACTIVE_VISITORS_TOPIC"), Category: catTopics},
		&cli.IntFlag{Name: "topic-replication-factor", Usage: fmt.Sprintf("replicas of each topic domination creates (0: %d on a cluster of at least %d brokers, else %d)", broker.ClusterReplicationFactor, broker.ClusterBrokers, broker.SingleReplicationFactor), EnvVars: env("TOPIC_REPLICATION_FACTOR"), Category: catTopics},
		&cli.IntFlag{Name: "topic-min-insync-replicas", Usage: fmt.Sprintf("min.insync.replicas of each topic domination creates (0: %d when it has at least %d replicas, else %d)", broker.ClusterMinInSync, broker.ClusterReplicationFactor, broker.SingleMinInSync), EnvVars: env("TOPIC_MIN_INSYNC_REPLICAS"), Category: catTopics},
	}...)
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
		TLS: tlsconfig.Config{
			Enabled:            globalBool(c, "kafka-tls"),
			CAFile:             global(c, "kafka-tls-ca"),
			CertFile:           global(c, "kafka-tls-cert"),
			KeyFile:            global(c, "kafka-tls-key"),
			InsecureSkipVerify: globalBool(c, "kafka-tls-insecure"),
		},
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

// clickhouseConfig reads the global ClickHouse flags.
func clickhouseConfig(c *cli.Context) (clickhouse.Config, error) {
	tc, err := tlsconfig.Config{
		Enabled:            globalBool(c, "clickhouse-tls"),
		CAFile:             global(c, "clickhouse-tls-ca"),
		InsecureSkipVerify: globalBool(c, "clickhouse-tls-insecure"),
	}.Build()
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
