package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/testenv"
)

// readAll returns the records of every partition of topic, by partition,
// and fails t unless they are want in all.
func readAll(t *testing.T, c *kafka.Client, brokers []string, topic string, parts, want int) map[int][]kafka.Message {
	t.Helper()
	ids := make([]int, parts)
	for i := range ids {
		ids[i] = i
	}
	spans, err := Spans(context.Background(), c, topic, ids)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]kafka.Message{}
	got := 0
	for _, s := range spans {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: s.Partition, MaxWait: 100 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		for int64(len(out[s.Partition])) < s.End-s.First {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, s.Partition, err)
			}
			out[s.Partition] = append(out[s.Partition], m)
		}
		cancel()
		r.Close()
		got += len(out[s.Partition])
	}
	if got != want {
		t.Fatalf("%s holds %d records, want %d", topic, got, want)
	}
	return out
}

func TestProducerPlacesKeyedRecordsAsKafkaGosMurmur2WriterAndKeepsTheirOrder(t *testing.T) {
	cfg, c := testClient(t)
	mine, theirs := testenv.Name(t, "mine"), testenv.Name(t, "theirs")
	testenv.DeleteTopicsAtCleanup(t, c, mine, theirs)
	if err := EnsureTopics(context.Background(), c, Topic{Name: mine, Partitions: 4}, Topic{Name: theirs, Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	// A small MaxBytes cuts each partition's records into many requests,
	// sent at once: their order within the partition must hold.
	p, err := NewProducer(cfg, ProducerConfig{MaxBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 400
	var msgs, copies []kafka.Message
	for i := range n {
		key := []byte(fmt.Sprintf("key-%d", i%37))
		value := []byte(fmt.Sprintf("%04d", i))
		msgs = append(msgs, kafka.Message{Topic: mine, Key: key, Value: value, Headers: []kafka.Header{{Key: "h", Value: []byte("v")}}})
		copies = append(copies, kafka.Message{Key: key, Value: value})
	}
	// The topics are new: wait until every partition answers, so that
	// one write without retries can be compared record for record.
	for _, topic := range []string{mine, theirs} {
		if _, err := Spans(context.Background(), c, topic, []int{0, 1, 2, 3}); err != nil {
			t.Fatal(err)
		}
	}
	err = broker(t, p).WriteMessages(context.Background(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Transport: &kafka.Transport{}, Topic: theirs, Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), copies...); err != nil {
		t.Fatal(err)
	}
	got, want := readAll(t, c, cfg.Brokers, mine, 4, n), readAll(t, c, cfg.Brokers, theirs, 4, n)
	for part := range 4 {
		if len(got[part]) != len(want[part]) {
			t.Fatalf("partition %d holds %d records, kafka-go's writer put %d there", part, len(got[part]), len(want[part]))
		}
		for i := range got[part] {
			g, w := got[part][i], want[part][i]
			if string(g.Key) != string(w.Key) || string(g.Value) != string(w.Value) {
				t.Fatalf("partition %d record %d is %s=%s, kafka-go's writer has %s=%s", part, i, g.Key, g.Value, w.Key, w.Value)
			}
			if len(g.Headers) != 1 || string(g.Headers[0].Value) != "v" {
				t.Fatalf("record %s lost its header: %v", g.Value, g.Headers)
			}
		}
	}
}

// broker is p as the runtime sees it.
func broker(t *testing.T, p *Producer) interface {
	WriteMessages(context.Context, ...kafka.Message) error
} {
	t.Helper()
	return p
}

func TestProducerSaysWhichRecordsFailedAndSendsNoneAfterThemOnTheirPartition(t *testing.T) {
	cfg, c := testClient(t)
	topic := testenv.Name(t, "small")
	testenv.DeleteTopicsAtCleanup(t, c, topic)
	res, err := c.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "2000"}},
	}}})
	if err != nil || res.Errors[topic] != nil {
		t.Fatalf("create %s: %v %v", topic, err, res.Errors[topic])
	}
	p, err := NewProducer(cfg, ProducerConfig{MaxBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := []kafka.Message{
		{Topic: topic, Value: []byte("small-1")},
		{Topic: topic, Value: []byte(strings.Repeat("x", 5000))},
		{Topic: topic, Value: []byte("small-2")},
	}
	var werrs kafka.WriteErrors
	// The topic is new: its leader may take a moment to be known.
	err = RetryTemporary(context.Background(), func() error {
		err := p.WriteMessages(context.Background(), msgs...)
		if errors.As(err, &werrs) && werrs[0] != nil && Temporary(werrs[0]) {
			return werrs[0]
		}
		return err
	})
	if !errors.As(err, &werrs) || len(werrs) != 3 {
		t.Fatalf("WriteMessages = %v, want one error per record", err)
	}
	// The record after it is not sent, so that no retry can put it
	// before the refused one: it carries the cause.
	if werrs[0] != nil || !errors.Is(werrs[1], kafka.MessageSizeTooLarge) || !errors.Is(werrs[2], kafka.MessageSizeTooLarge) {
		t.Fatalf("errors %v, want the first record sent and the others refused as too large", werrs)
	}
	testenv.CheckErr(t, "the record after", werrs[2], "not sent after an earlier record of "+topic+"/0 failed")
	readAll(t, c, cfg.Brokers, topic, 1, 1)

	err = p.WriteMessages(context.Background(), kafka.Message{Topic: testenv.Name(t, "missing"), Value: []byte("x")})
	testenv.CheckErr(t, "a missing topic", err, "Unknown Topic Or Partition")
	err = p.WriteMessages(context.Background(), kafka.Message{Value: []byte("x")})
	testenv.CheckErr(t, "no topic", err, "record 0 has no topic")
}

// group places a call's records, over two topics interleaved (an output
// and its dead letters), where the Murmur2 balancer does, each record once,
// in call order within its partition.
func TestProducerGroupsInterleavedTopicsByPartitionInCallOrder(t *testing.T) {
	p := &Producer{ttl: time.Hour, topics: map[string]topicParts{
		"out": {ids: []int{0, 1, 2, 3}, at: time.Now()},
		"dlq": {ids: []int{0}, at: time.Now()},
	}}
	var msgs []kafka.Message
	for i := range 300 {
		topic := "out"
		if i%7 == 3 {
			topic = "dlq"
		}
		msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i%23))})
	}
	g, err := p.group(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.dests) != 5 {
		t.Fatalf("dests %v: want the 4 partitions of out and the 1 of dlq", g.dests)
	}
	var balancer kafka.Murmur2Balancer
	seen := make([]bool, len(msgs))
	for d, dst := range g.dests {
		last := -1
		for _, i := range g.records(d) {
			if seen[i] {
				t.Fatalf("record %d grouped twice", i)
			}
			seen[i] = true
			if i <= last {
				t.Fatalf("%s/%d holds record %d after %d: not in call order", dst.topic, dst.partition, i, last)
			}
			last = i
			ids := p.topics[msgs[i].Topic].ids
			if msgs[i].Topic != dst.topic || balancer.Balance(msgs[i], ids...) != dst.partition {
				t.Fatalf("record %d (%s, key %s) grouped on %s/%d", i, msgs[i].Topic, msgs[i].Key, dst.topic, dst.partition)
			}
		}
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("record %d not grouped", i)
		}
	}
	if _, err := p.group(context.Background(), []kafka.Message{{Topic: "out"}, {}}); err == nil || !strings.Contains(err.Error(), "record 1 has no topic") {
		t.Errorf("a record without a topic: got %v, want it named", err)
	}
}
