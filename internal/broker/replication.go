package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"
)

// Replication defaults. On a cluster of at least ClusterBrokers brokers a
// topic gets ClusterReplicationFactor copies and needs ClusterMinInSync of
// them in sync to accept a RequireAll write, so one broker may be lost
// without losing an acknowledged record or stopping the writes. A smaller
// cluster (a single development broker) gets one copy.
const (
	ClusterBrokers           = 3
	ClusterReplicationFactor = 3
	ClusterMinInSync         = 2
	SingleReplicationFactor  = 1
	SingleMinInSync          = 1
)

// minInSyncConfig is the topic setting RequireAll depends on.
const minInSyncConfig = "min.insync.replicas"

// Replication is how the topics the product creates are replicated.
//
// RequireAll waits for every replica in the in-sync set, and that set may
// shrink to the leader alone: only min.insync.replicas bounds it from below.
// So a replicated topic whose min.insync.replicas is 1 acknowledges records
// that one broker holds. Check warns about such topics rather than refuse
// them, because they still work and their owner may have chosen them; it
// refuses a min.insync.replicas above the replication factor, under which
// every RequireAll write fails.
type Replication struct {
	// Factor is how many copies each partition of a created topic has.
	// Default (0): ClusterReplicationFactor on a cluster of at least
	// ClusterBrokers live brokers, else SingleReplicationFactor.
	Factor int
	// MinInSync is the min.insync.replicas of a created topic. Default (0):
	// ClusterMinInSync when the factor is at least ClusterReplicationFactor,
	// else SingleMinInSync.
	MinInSync int
}

// Validate reports a setting that cannot work.
func (r Replication) Validate() error {
	if r.Factor < 0 || r.MinInSync < 0 {
		return fmt.Errorf("topic replication factor %d and min in-sync replicas %d: want 0 (automatic) or more", r.Factor, r.MinInSync)
	}
	if r.Factor > 0 && r.MinInSync > r.Factor {
		return fmt.Errorf("topic min in-sync replicas %d exceeds the replication factor %d: every RequireAll write would fail", r.MinInSync, r.Factor)
	}
	return nil
}

// Resolve returns the factor and min.insync.replicas for a cluster of
// brokers live brokers, filling in the defaults.
func (r Replication) Resolve(brokers int) (factor, minInSync int, err error) {
	if err := r.Validate(); err != nil {
		return 0, 0, err
	}
	factor = automatic(r.Factor, brokers >= ClusterBrokers, ClusterReplicationFactor, SingleReplicationFactor)
	if factor > brokers {
		return 0, 0, fmt.Errorf("topic replication factor %d needs at least %d live brokers, the cluster has %d", factor, factor, brokers)
	}
	minInSync = automatic(r.MinInSync, factor >= ClusterReplicationFactor, ClusterMinInSync, SingleMinInSync)
	if minInSync > factor {
		return 0, 0, fmt.Errorf("topic min in-sync replicas %d exceeds the replication factor %d: every RequireAll write would fail", minInSync, factor)
	}
	return factor, minInSync, nil
}

// automatic returns set, or when it is 0 (automatic) cluster or single.
func automatic(set int, isCluster bool, cluster, single int) int {
	switch {
	case set != 0:
		return set
	case isCluster:
		return cluster
	}
	return single
}

// EnsureTopics creates the topics that do not exist yet with r's
// replication. Existing topics are left as they are: their partition counts
// and replication are not changed (Check reports on them).
func (r Replication) EnsureTopics(ctx context.Context, c *kafka.Client, topics ...Topic) error {
	names := make([]string, 0, len(topics))
	for _, t := range topics {
		if err := ValidTopic(t.Name); err != nil {
			return err
		}
		names = append(names, t.Name)
	}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return fmt.Errorf("describe topics %s: %w", strings.Join(names, ","), err)
	}
	exists := map[string]bool{}
	for _, t := range md.Topics {
		if t.Error == nil && len(t.Partitions) > 0 {
			exists[t.Name] = true
		}
	}
	var create []kafka.TopicConfig
	for _, t := range topics {
		if exists[t.Name] {
			continue
		}
		factor, minInSync, err := r.Resolve(len(md.Brokers))
		if err != nil {
			return fmt.Errorf("create topic %s: %w", t.Name, err)
		}
		p := t.Partitions
		if p <= 0 {
			p = SinglePartition
		}
		create = append(create, kafka.TopicConfig{
			Topic: t.Name, NumPartitions: p, ReplicationFactor: factor,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: minInSyncConfig, ConfigValue: strconv.Itoa(minInSync)}},
		})
	}
	if len(create) == 0 {
		return nil
	}
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: create})
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for name, terr := range res.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, terr)
		}
	}
	return waitForLeaders(ctx, c, names)
}

// TopicDurability is what a topic's replication makes of a RequireAll
// acknowledgement.
type TopicDurability struct {
	Topic string
	// Factor is the fewest replicas any partition of the topic has.
	Factor int
	// MinInSync is the topic's effective min.insync.replicas.
	MinInSync int
}

// Weak reports why a RequireAll acknowledgement on the topic may rest on a
// single broker, or "" when it cannot.
func (d TopicDurability) Weak() string {
	if d.Factor > 1 && d.MinInSync < 2 {
		return fmt.Sprintf("%d replicas but min.insync.replicas %d: RequireAll is acknowledged by the leader alone once the other replicas fall out of sync", d.Factor, d.MinInSync)
	}
	return ""
}

// Impossible reports why no RequireAll write to the topic can succeed, or ""
// when one can.
func (d TopicDurability) Impossible() string {
	if d.MinInSync > d.Factor {
		return fmt.Sprintf("min.insync.replicas %d exceeds its %d replicas: every RequireAll write fails with NOT_ENOUGH_REPLICAS", d.MinInSync, d.Factor)
	}
	return ""
}

// Durability describes the replication of existing topics.
func Durability(ctx context.Context, c *kafka.Client, names ...string) ([]TopicDurability, error) {
	// Topics created moments ago may not be known to every broker yet:
	// Kafka says so with an error it calls temporary.
	var out []TopicDurability
	err := RetryTemporary(ctx, func() (err error) {
		out, err = durability(ctx, c, names...)
		return err
	})
	return out, err
}

func durability(ctx context.Context, c *kafka.Client, names ...string) ([]TopicDurability, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return nil, fmt.Errorf("describe topics %s: %w", strings.Join(names, ","), err)
	}
	factors := map[string]int{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("describe topic %s: %w", t.Name, t.Error)
		}
		f := 0
		for i, p := range t.Partitions {
			if i == 0 || len(p.Replicas) < f {
				f = len(p.Replicas)
			}
		}
		factors[t.Name] = f
	}
	req := &kafka.DescribeConfigsRequest{}
	for _, n := range names {
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: n, ConfigNames: []string{minInSyncConfig},
		})
	}
	cfgs, err := c.DescribeConfigs(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("describe configs of topics %s: %w", strings.Join(names, ","), err)
	}
	minISR := map[string]int{}
	for _, res := range cfgs.Resources {
		if res.Error != nil {
			return nil, fmt.Errorf("describe configs of topic %s: %w", res.ResourceName, res.Error)
		}
		for _, e := range res.ConfigEntries {
			if e.ConfigName != minInSyncConfig {
				continue
			}
			n, err := strconv.Atoi(e.ConfigValue)
			if err != nil {
				return nil, fmt.Errorf("topic %s: %s %q is not a number", res.ResourceName, minInSyncConfig, e.ConfigValue)
			}
			minISR[res.ResourceName] = n
		}
	}
	out := make([]TopicDurability, 0, len(names))
	for _, n := range names {
		f, ok := factors[n]
		if !ok {
			return nil, fmt.Errorf("describe topic %s: not found", n)
		}
		m, ok := minISR[n]
		if !ok {
			return nil, fmt.Errorf("describe configs of topic %s: no %s", n, minInSyncConfig)
		}
		out = append(out, TopicDurability{Topic: n, Factor: f, MinInSync: m})
	}
	return out, nil
}

// Check describes the topics and logs a warning for each one whose
// RequireAll acknowledgement may rest on one broker; it returns an error
// naming the topics no RequireAll write can reach.
func Check(ctx context.Context, c *kafka.Client, log *slog.Logger, names ...string) error {
	ds, err := Durability(ctx, c, names...)
	if err != nil {
		return err
	}
	var bad []string
	for _, d := range ds {
		if why := d.Impossible(); why != "" {
			bad = append(bad, d.Topic+": "+why)
			continue
		}
		if why := d.Weak(); why != "" {
			log.Warn("topic replication weakens RequireAll", "topic", d.Topic, "replicas", d.Factor, "min_insync_replicas", d.MinInSync, "why", why)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("topics refuse every acknowledged write: %s", strings.Join(bad, "; "))
	}
	return nil
}

// PrepareTopics creates the missing topics with c.Replication, then checks
// the durability of all of them (see Check).
func (c Config) PrepareTopics(ctx context.Context, client *kafka.Client, log *slog.Logger, topics ...Topic) error {
	if err := c.Replication.EnsureTopics(ctx, client, topics...); err != nil {
		return err
	}
	names := make([]string, 0, len(topics))
	for _, t := range topics {
		names = append(names, t.Name)
	}
	return Check(ctx, client, log, names...)
}
