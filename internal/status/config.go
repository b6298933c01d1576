package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/guard"
)

// Defaults of Config.
const (
	// DefaultInterval is how often Run refreshes the report.
	DefaultInterval = 5 * time.Second
	// DefaultStallAfter is how long a partition may wait with an unmoved
	// committed offset before it is stalled. ClickHouse 18.16's Kafka engine
	// commits after each block, and a block is flushed after
	// stream_flush_interval_ms (7.5s) at the latest, so a healthy engine
	// under light load can sit on an offset for that long; 20s leaves room
	// for two flushes and a refresh.
	DefaultStallAfter = 20 * time.Second
	// DefaultTimeout bounds one Collect.
	DefaultTimeout = 15 * time.Second
)

// Config configures a Collector. The topics and groups of the agent stages
// come from the agents' own configs, so status watches what the workers run.
type Config struct {
	// Shadow is the shadow agent's config: its input topic, group and
	// dead-letter topic. Defaults as agents.ShadowConfig.
	Shadow agents.ShadowConfig
	// Visits is the visit agents' config: input, repartition and
	// dead-letter topics, the group (the windows stage uses it with
	// "-windows" appended, as the agents do), window and grace. Defaults as
	// agents.VisitsConfig.
	Visits agents.VisitsConfig
	// Engines names the topics and consumer groups of the Kafka engine
	// tables. Where ClickHouse has the engine table, its own settings
	// (kafka_topic_list, kafka_group_name) win, since they are what the
	// engine reads; these are for a database not yet migrated. Default
	// topics: the agents' output topics; default groups as
	// clickhouse.KafkaSource.
	Engines clickhouse.KafkaSource
	// ShadowDeadLetterTopic and ActiveVisitorsDeadLetterTopic are the
	// guard's dead-letter topics, counted when they exist. Defaults
	// guard.DefaultShadowDeadLetterTopic and
	// guard.DefaultActiveVisitorsDeadLetterTopic.
	ShadowDeadLetterTopic         string
	ActiveVisitorsDeadLetterTopic string
	// Interval is how often Run refreshes. Default DefaultInterval.
	Interval time.Duration
	// StallAfter is how long a partition with records waiting may keep
	// its committed offset before it is stalled. The windows stage gets
	// Visits.Window + Visits.Grace on top: it keeps the records of open
	// windows uncommitted on purpose, so its offset moves only as windows
	// close. Default DefaultStallAfter.
	StallAfter time.Duration
	// Timeout bounds one Collect. Default DefaultTimeout.
	Timeout time.Duration
	// Ready is the worker's readiness check (what GET /ready answers),
	// exported as domination_ready. Nil: the report has no readiness.
	Ready func(ctx context.Context) error
}

// WithDefaults returns c with its zero (and negative) fields set to the
// documented defaults.
func (c Config) WithDefaults() Config {
	c.Shadow = c.Shadow.WithDefaults()
	c.Visits = c.Visits.WithDefaults()
	c.Engines.ShadowTopic = cmp.Or(c.Engines.ShadowTopic, c.Shadow.OutputTopic)
	c.Engines.ShadowGroup = cmp.Or(c.Engines.ShadowGroup, clickhouse.DefaultShadowGroup)
	c.Engines.ActiveVisitorsTopic = cmp.Or(c.Engines.ActiveVisitorsTopic, c.Visits.OutputTopic)
	c.Engines.ActiveVisitorsGroup = cmp.Or(c.Engines.ActiveVisitorsGroup, clickhouse.DefaultActiveVisitorsGroup)
	c.ShadowDeadLetterTopic = cmp.Or(c.ShadowDeadLetterTopic, guard.DefaultShadowDeadLetterTopic)
	c.ActiveVisitorsDeadLetterTopic = cmp.Or(c.ActiveVisitorsDeadLetterTopic, guard.DefaultActiveVisitorsDeadLetterTopic)
	c.Interval = cmp.Or(max(c.Interval, 0), DefaultInterval)
	c.StallAfter = cmp.Or(max(c.StallAfter, 0), DefaultStallAfter)
	c.Timeout = cmp.Or(max(c.Timeout, 0), DefaultTimeout)
	return c
}

// Validate reports the first setting that cannot work. It applies no
// defaults.
func (c Config) Validate() error {
	if err := c.Shadow.Validate(); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if err := c.Visits.Validate(); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	for _, t := range []string{c.Engines.ShadowTopic, c.Engines.ActiveVisitorsTopic, c.ShadowDeadLetterTopic, c.ActiveVisitorsDeadLetterTopic} {
		if err := broker.ValidTopic(t); err != nil {
			return fmt.Errorf("status: %w", err)
		}
	}
	if c.Engines.ShadowGroup == "" || c.Engines.ActiveVisitorsGroup == "" {
		return errors.New("status: empty kafka engine consumer group")
	}
	return nil
}

// WindowsGroup is the consumer group of the windows stage, as the visit
// agents name it.
func (c Config) WindowsGroup() string { return c.Visits.WithDefaults().GroupID + "-windows" }

// windowsSlack is what the windows stage may keep uncommitted on purpose.
func (c Config) windowsSlack() time.Duration { return c.Visits.Window + c.Visits.Grace }
