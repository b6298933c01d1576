package verify

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/testenv"
)

func TestRecordsAreReadWithTheFirstBrokerDown(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: &kafka.Transport{}}
	topic := testenv.Name(t, "down")
	if err := broker.EnsureTopics(context.Background(), c, broker.Topic{Name: topic, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	})
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Transport: &kafka.Transport{}, Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	msgs := make([]kafka.Message, 10)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte{byte('a' + i)}, Value: []byte("v")}
	}
	err := broker.RetryTemporary(context.Background(), func() error { return w.WriteMessages(context.Background(), msgs...) })
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1: the broker the list starts with is down.
	src := &Source{Brokers: append([]string{"127.0.0.1:1"}, brokers...), Dialer: &kafka.Dialer{Timeout: 2 * time.Second}}
	got, err := src.Records(context.Background(), topic, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("read %d records, want %d", len(got), len(msgs))
	}
}
