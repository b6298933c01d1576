package cli

import (
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/guard"
)

const catGuard = "ClickHouse guard"

// guardFlags configure the worker's guard of the Kafka engine tables.
func guardFlags() []cli.Flag {
	return slices.Concat([]cli.Flag{
		&cli.StringFlag{Name: "guard", Value: string(guard.DefaultMode), Usage: "guard the Kafka engine tables against records they cannot store: auto (on ClickHouse before " + clickhouse.ErrorStreamSince.String() + "), on or off", EnvVars: env("GUARD"), Category: catGuard},
		&cli.StringFlag{Name: "guard-group", Value: guard.DefaultAuditGroup, Usage: "consumer groups of the guard's audit are <group>-<table>; the leader is elected in <group>-leader on the one-partition topic <group>", EnvVars: env("GUARD_GROUP"), Category: catGuard},
		&cli.BoolFlag{Name: "guard-audit", Value: true, Usage: "read the output topics once more and dead-letter, with their offsets, records that break the topics' contract (--guard-audit=false keeps only the unsticking; the views still keep such records out of the stores)", EnvVars: env("GUARD_AUDIT"), Category: catGuard},
		&cli.DurationFlag{Name: "guard-skip-after", Value: guard.DefaultSkipAfter, Usage: "how long an engine partition must stay at one offset with records waiting before the guard looks for a bad record there", EnvVars: env("GUARD_SKIP_AFTER"), Category: catGuard},
	}, engineGroupFlags("", catGuard), []cli.Flag{
		&cli.StringFlag{Name: "shadow-dlq-topic", Value: guard.DefaultShadowDeadLetterTopic, Usage: "dead-letter topic for shadow records that break the topic's contract", EnvVars: env("SHADOW_DLQ_TOPIC"), Category: catGuard},
		&cli.StringFlag{Name: "active-visitors-dlq-topic", Value: guard.DefaultActiveVisitorsDeadLetterTopic, Usage: "dead-letter topic for active-visitors records that break the topic's contract", EnvVars: env("ACTIVE_VISITORS_DLQ_TOPIC"), Category: catGuard},
	})
}

// guardConfig reads the guard's flags.
func guardConfig(c *cli.Context) guard.Config {
	src := clickhouse.KafkaSource{
		ShadowTopic:         global(c, "shadow-topic"),
		ShadowGroup:         c.String("shadow-consumer-group"),
		ActiveVisitorsTopic: global(c, "active-visitors-topic"),
		ActiveVisitorsGroup: c.String("active-visitors-consumer-group"),
	}
	return guard.Config{
		Mode:        guard.Mode(c.String("guard")),
		NoAudit:     !c.Bool("guard-audit"),
		AuditGroup:  c.String("guard-group"),
		LeaderGroup: c.String("guard-group") + "-leader",
		LeaderTopic: c.String("guard-group"),
		SkipAfter:   c.Duration("guard-skip-after"),
		Tables:      guard.Tables(src, c.String("shadow-dlq-topic"), c.String("active-visitors-dlq-topic")),
	}
}
