package testenv

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// DeleteTopicsAtCleanup deletes topics through c when t ends, and fails t
// if a topic that exists cannot be deleted.
func DeleteTopicsAtCleanup(t testing.TB, c *kafka.Client, topics ...string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
		if err != nil {
			t.Errorf("delete topics %v: %v", topics, err)
			return
		}
		for name, err := range res.Errors {
			if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
				t.Errorf("delete topic %s: %v", name, err)
			}
		}
	})
}
