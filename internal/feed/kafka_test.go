package feed

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/metrics"
)

// countTopic creates a one-partition topic of t's own, deleted when t
// ends, and returns a writer to it.
func countTopic(t *testing.T, brokers []string) (string, *kafka.Writer) {
	t.Helper()
	topic := testenv.Name(t, "av")
	bc := broker.Config{Brokers: brokers}
	client, err := bc.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := broker.EnsureTopics(ctx, client, broker.Topic{Name: topic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	})
	tr, err := bc.Transport()
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Transport:    tr,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
	}
	t.Cleanup(func() { _ = w.Close() })
	return topic, w
}

// record encodes c as the visits agent does.
func record(t *testing.T, c Count, at time.Time) kafka.Message {
	t.Helper()
	v, err := json.Marshal(map[string]any{"account_id": c.AccountID, "store_id": c.StoreID, "window": []int64{c.Start, c.End}, "count": c.Count})
	if err != nil {
		t.Fatal(err)
	}
	store := "null"
	if c.StoreID != nil {
		store = *c.StoreID
	}
	return kafka.Message{Key: []byte(strconv.FormatInt(c.AccountID, 10) + "|" + store), Value: v, Time: at}
}

func produce(t *testing.T, w *kafka.Writer, msgs ...kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func TestRunReplaysRecentCountsAndPushesNewOnes(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic, w := countTopic(t, brokers)
	now := time.Now()
	produce(t, w,
		record(t, win(1, 0, 9), now.Add(-time.Hour)), // before the replay window
		record(t, win(1, 10, 1), now),
		kafka.Message{Value: []byte(`{"account_id":1,"window":"oops"}`), Time: now}, // skipped
		record(t, Count{AccountID: 2, Start: 10, End: 20, Count: 2}, now),           // null store
		record(t, win(1, 20, 3), now),
	)

	dialer, err := broker.Config{Brokers: brokers}.Dialer()
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(Config{Brokers: brokers, Dialer: dialer, Topic: topic, Replay: 10 * time.Minute, ReadyWindow: 3 * time.Second},
		nil, testLogger(t), metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	cancel := runFeed(t, f)

	testenv.WaitFor(t, "three counts replayed", 15*time.Second, func() bool { return value(t, f.m.FeedReceived) == 3 })
	if got := value(t, f.m.FeedInvalid); got != 1 {
		t.Errorf("invalid = %v, want 1", got)
	}
	testenv.WaitFor(t, "ready", 5*time.Second, func() bool { return f.Ready(context.Background()) == nil })

	srv := newServer(t, f)
	c := dial(t, wsURL(srv, "?history=10"), nil)
	for _, want := range []Count{win(1, 10, 1), {AccountID: 2, Start: 10, End: 20, Count: 2}, win(1, 20, 3)} {
		if got := readCount(t, c); !same(got, want) {
			t.Fatalf("history: got %v, want %v", got, want)
		}
	}
	produce(t, w, record(t, win(1, 30, 4), time.Now()))
	if got := readCount(t, c); !same(got, win(1, 30, 4)) {
		t.Fatalf("live: got %v", got)
	}
	// A window re-emitted after a visits worker restart is not pushed again.
	produce(t, w, record(t, win(1, 20, 3), time.Now()), record(t, win(1, 40, 1), time.Now()))
	if got := readCount(t, c); !same(got, win(1, 40, 1)) {
		t.Fatalf("after a re-emission: got %v, want window 40", got)
	}
	if got := value(t, f.m.FeedDuplicates); got != 1 {
		t.Errorf("duplicates = %v, want 1", got)
	}

	cancel()
	if code := closeCode(t, c, 10*time.Second); code != closeGoingAway {
		t.Errorf("close code on stop = %d, want 1001", code)
	}
}

// runFeed runs f until the returned cancel is called or t ends. When t ends
// it checks that Run returned nil within 10 s of its context ending.
func runFeed(t *testing.T, f *Feed) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wait := goRun(t, ctx, f, f.readKafka)
	t.Cleanup(func() {
		cancel()
		if err := wait(10 * time.Second); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return cancel
}

func TestRunWithKafkaDownRetriesAndIsNotReady(t *testing.T) {
	f, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Topic: "nowhere"}, nil, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	runFeed(t, f)
	waitUnready(t, f, "Ready names kafka", 5*time.Second, "kafka nowhere: last fetch failed")
}

func TestRunWaitsForKafkaToComeUpAndNoticesItGoingDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	f, err := New(Config{Brokers: []string{addr}, Topic: "av", ReadyWindow: 1500 * time.Millisecond}, nil, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	runFeed(t, f)
	waitUnready(t, f, "not ready while kafka is down", 5*time.Second, "kafka av: last fetch failed")
	time.Sleep(500 * time.Millisecond) // a retry or two

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, "av"))
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(addr), Transport: &kafka.Transport{}, Topic: "av", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer func() { _ = w.Close() }()
	produce(t, w, record(t, win(1, 0, 1), time.Now()))
	testenv.WaitFor(t, "the count read once kafka is up", 20*time.Second, func() bool { return value(t, f.m.FeedReceived) == 1 })
	testenv.WaitFor(t, "ready", 5*time.Second, func() bool { return f.Ready(context.Background()) == nil })

	cluster.Close()
	waitUnready(t, f, "not ready once kafka is gone", 10*time.Second, "kafka av")
}
