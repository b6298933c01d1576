package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// callTimeout bounds one request of the harness to the broker.
const callTimeout = 10 * time.Second

// admin is the harness's view of the broker: topics, end offsets and the
// offsets a consumer group has committed.
type admin struct {
	client *kafka.Client
	// factor and minInSync are the replication of the topics it creates,
	// chosen at the first creation (factor 0: not yet).
	factor, minInSync int
}

func newAdmin(brokers []string) *admin {
	return &admin{client: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}}
}

// replication chooses the topics' replication as domination does for its
// own (internal/broker.Replication's default): 3 copies of which 2 in
// sync on a cluster of at least 3 brokers, else 1 and the broker's
// default.
func (a *admin) replication(ctx context.Context) (factor, minInSync int, err error) {
	if a.factor > 0 {
		return a.factor, a.minInSync, nil
	}
	md, err := a.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return 0, 0, fmt.Errorf("describe the cluster: %w", err)
	}
	a.factor = 1
	if len(md.Brokers) >= 3 {
		a.factor, a.minInSync = 3, 2
	}
	return a.factor, a.minInSync, nil
}

// createTopic creates a topic and waits until every partition has a leader.
func (a *admin) createTopic(ctx context.Context, name string, partitions int, configs map[string]string) error {
	factor, minInSync, err := a.replication(ctx)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	tc := kafka.TopicConfig{Topic: name, NumPartitions: partitions, ReplicationFactor: factor}
	if minInSync > 0 {
		tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(minInSync)})
	}
	for k, v := range configs {
		tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	res, err := a.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{tc}})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	if err := res.Errors[name]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	for {
		md, err := a.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{name}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions {
			ready := true
			for _, p := range md.Topics[0].Partitions {
				ready = ready && p.Leader.ID >= 0 && p.Error == nil
			}
			if ready {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for topic %s: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deleteTopics removes topics; failures are ignored (cleanup only).
func (a *admin) deleteTopics(ctx context.Context, names ...string) {
	if len(names) > 0 {
		_, _ = a.client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: names})
	}
}

// deleteGroups removes consumer groups; failures are ignored (cleanup only).
func (a *admin) deleteGroups(ctx context.Context, ids ...string) {
	if len(ids) > 0 {
		_, _ = a.client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: ids})
	}
}

// endOffsets returns the next offset to be written on each partition.
func (a *admin) endOffsets(ctx context.Context, topic string, partitions int) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range partitions {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	res, err := a.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	out := make(map[int]int64, partitions)
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	if len(out) != partitions {
		return nil, fmt.Errorf("list offsets of %s: %d of %d partitions answered", topic, len(out), partitions)
	}
	return out, nil
}

// records returns how many records a topic holds (it is never truncated
// during a run, so the end offsets add up to it).
func (a *admin) records(ctx context.Context, topic string, partitions int) (int64, error) {
	ends, err := a.endOffsets(ctx, topic, partitions)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ends {
		n += e
	}
	return n, nil
}

// committed returns the group's committed offset per partition of topic
// (-1 where it has none).
func (a *admin) committed(ctx context.Context, group, topic string, partitions int) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ids := make([]int, partitions)
	for p := range partitions {
		ids[p] = p
	}
	res, err := a.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	if res.Error != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, res.Error)
	}
	out := make(map[int]int64, partitions)
	for _, p := range ids {
		out[p] = -1
	}
	for _, p := range res.Topics[topic] {
		if p.Error == nil {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// progress sums, over the partitions, how far the group's commits reach
// into ends (so a complete drain returns the sum of ends).
func progress(committed, ends map[int]int64) (done, total int64) {
	for p, end := range ends {
		total += end
		if c := committed[p]; c > 0 {
			done += min(c, end)
		}
	}
	return done, total
}
