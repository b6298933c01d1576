package broker

import (
	"context"
	"fmt"
	"sort"

	"github.com/segmentio/kafka-go"
)

// PartitionIDs returns the partition ids of topic, in order. A topic that
// does not exist (or has no partitions yet) is an error wrapping
// kafka.UnknownTopicOrPartition.
func PartitionIDs(ctx context.Context, c *kafka.Client, topic string) ([]int, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("describe topic %s: %w", topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			break
		}
		ids := make([]int, len(t.Partitions))
		for i, p := range t.Partitions {
			ids[i] = p.ID
		}
		sort.Ints(ids)
		return ids, nil
	}
	return nil, fmt.Errorf("describe topic %s: %w", topic, kafka.UnknownTopicOrPartition)
}

// Span is what a partition holds: offsets First up to, not including, End.
type Span struct {
	Partition  int
	First, End int64
}

// Spans returns the span of each of the partitions ids of topic, in
// partition order. Temporary errors, which a topic created moments ago
// answers with, are retried as RetryTemporary does.
//
// The earliest and the latest offsets are asked for in two requests: kafka-go
// tells the answers to one request apart by the timestamp the broker sends
// back, which is -1 for both, so a request that names a partition twice can
// report its end as its start.
func Spans(ctx context.Context, c *kafka.Client, topic string, ids []int) ([]Span, error) {
	first, err := offsetsAt(ctx, c, topic, ids, kafka.FirstOffset)
	if err != nil {
		return nil, err
	}
	end, err := offsetsAt(ctx, c, topic, ids, kafka.LastOffset)
	if err != nil {
		return nil, err
	}
	out := make([]Span, len(ids))
	for i, id := range ids {
		out[i] = Span{Partition: id, First: first[id], End: end[id]}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out, nil
}

// offsetsAt returns, per partition, the offset that ListOffsets gives for
// at: kafka.FirstOffset or kafka.LastOffset.
func offsetsAt(ctx context.Context, c *kafka.Client, topic string, ids []int, at int64) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, len(ids))
	for i, id := range ids {
		reqs[i] = kafka.OffsetRequest{Partition: id, Timestamp: at}
	}
	out := make(map[int]int64, len(ids))
	err := RetryTemporary(ctx, func() error {
		res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			return fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		for _, p := range res.Topics[topic] {
			if p.Error != nil {
				return fmt.Errorf("list offsets of %s/%d: %w", topic, p.Partition, p.Error)
			}
			if at == kafka.FirstOffset {
				out[p.Partition] = p.FirstOffset
			} else {
				out[p.Partition] = p.LastOffset
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, fmt.Errorf("list offsets of %s: no answer for partition %d", topic, id)
		}
	}
	return out, nil
}
