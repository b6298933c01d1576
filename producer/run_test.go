package producer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/producer"
	"github.com/domination/domination/wire"
)

// newTopic creates a fresh topic on the real broker and deletes it after
// the test.
func newTopic(t testing.TB, brokers []string, partitions int) string {
	t.Helper()
	c, err := broker.Config{Brokers: brokers}.Client()
	if err != nil {
		t.Fatal(err)
	}
	topic := testenv.Name(t, "produce")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := broker.EnsureTopics(ctx, c, broker.Topic{Name: topic, Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})
	return topic
}

func newWriter(t testing.TB, brokers []string) *kafka.Writer {
	t.Helper()
	tr, err := broker.Config{Brokers: brokers}.Transport()
	if err != nil {
		t.Fatal(err)
	}
	w := producer.NewWriter(brokers, tr)
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// readAll returns every message in the topic's partitions, fetching
// each partition up to its high watermark.
func readAll(t testing.TB, brokers []string, topic string, partitions int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A transport of its own: the shared default one caches metadata from
	// before the topic existed.
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: tr}
	var all []kafka.Message
	for p := range partitions {
		for offset, end := int64(0), int64(-1); end < 0 || offset < end; {
			res, err := c.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: offset, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
			if err == nil {
				err = res.Error
			}
			if err != nil {
				t.Fatalf("fetch %s/%d at %d: %v", topic, p, offset, err)
			}
			end = res.HighWatermark
			for {
				r, err := res.Records.ReadRecord()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("read %s/%d at %d: %v", topic, p, offset, err)
				}
				if r.Offset < offset {
					continue
				}
				m := kafka.Message{Topic: topic, Partition: p, Offset: r.Offset, Time: r.Time}
				if m.Key, err = readBytes(r.Key); err == nil {
					m.Value, err = readBytes(r.Value)
				}
				if err != nil {
					t.Fatalf("read %s/%d at %d: %v", topic, p, r.Offset, err)
				}
				all = append(all, m)
				offset = r.Offset + 1
			}
		}
	}
	return all
}

func readBytes(b kafka.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	return io.ReadAll(b)
}

func TestRunRatingsWritesTheSeededStream(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	const partitions, count = 4, 5000
	topic := newTopic(t, brokers, partitions)
	var progressed []producer.Summary
	// Kafka keeps milliseconds: every record is stamped between these two.
	began := time.Now().Truncate(time.Millisecond)
	sum, err := producer.RunRatings(context.Background(), newWriter(t, brokers),
		producer.RatingsConfig{Topic: topic, Count: count, Seed: 42},
		func(s producer.Summary) { progressed = append(progressed, s) }, testLogger(t))
	ended := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	t.Log(sum)
	if sum.Sent != count || sum.Acked != count || sum.Failed != 0 || sum.Seed != 42 || sum.Kind != "ratings" || !sum.Done {
		t.Fatalf("summary %+v, want %d sent and acked, seed 42, done", sum, count)
	}
	if len(progressed) == 0 || progressed[len(progressed)-1] != sum {
		t.Errorf("last progress call %+v, want the returned summary %+v", progressed, sum)
	}

	want := map[string]int64{}
	stream := producer.NewRatingStream(42, 0, 0)
	for range count {
		r, id := stream.Next()
		want[id] = r
	}
	msgs := readAll(t, brokers, topic, partitions)
	if len(msgs) != count {
		t.Fatalf("topic holds %d messages, want %d", len(msgs), count)
	}
	balancer := kafka.Murmur2Balancer{}
	parts := []int{0, 1, 2, 3}
	perPartition := map[int]int{}
	for _, m := range msgs {
		// The topic's own decoder, as the shadow agent reads it.
		r, err := wire.DecodeRating(m.Value, wire.RatingLimits{})
		if err != nil {
			t.Fatalf("message %s: %v", m.Value, err)
		}
		if string(m.Key) != string(r.UniqueID) {
			t.Fatalf("key %q, unique_id %q", m.Key, r.UniqueID)
		}
		wantRating, ok := want[string(r.UniqueID)]
		if !ok || wantRating != r.Rating {
			t.Fatalf("message %s is not in the seeded stream (or repeated)", m.Value)
		}
		delete(want, string(r.UniqueID))
		if p := balancer.Balance(kafka.Message{Key: m.Key}, parts...); p != m.Partition {
			t.Fatalf("key %s on partition %d, murmur2 says %d", m.Key, m.Partition, p)
		}
		if m.Time.Before(began) || m.Time.After(ended) {
			t.Fatalf("message time %s is not its creation time (the run went from %s to %s)", m.Time, began, ended)
		}
		perPartition[m.Partition]++
	}
	if len(perPartition) != partitions {
		t.Errorf("messages spread over partitions %v, want all %d", perPartition, partitions)
	}
}

func TestRunRatingsStopsCleanlyWhenCancelled(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	sum, err := producer.RunRatings(ctx, newWriter(t, brokers),
		producer.RatingsConfig{Topic: topic, Rate: 20000, Seed: 7}, nil, testLogger(t))
	if err != nil {
		t.Fatalf("RunRatings returned %v after ctx ended, want nil", err)
	}
	t.Log(sum)
	if sum.Acked == 0 || sum.Acked != sum.Sent || sum.Failed != 0 {
		t.Fatalf("summary %+v, want every sent rating acknowledged", sum)
	}
	msgs := readAll(t, brokers, topic, 2)
	if int64(len(msgs)) != sum.Acked {
		t.Fatalf("topic holds %d messages, summary says %d acknowledged", len(msgs), sum.Acked)
	}
	var got, want []string
	for _, m := range msgs {
		got = append(got, string(m.Key))
	}
	stream := producer.NewRatingStream(7, 0, 0)
	for range sum.Acked {
		_, id := stream.Next()
		want = append(want, id)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatal("the topic does not hold exactly the first ratings of the seeded stream")
	}
}

func TestRunRatingsFailsOnMissingTopic(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.Name(t, "missing") // never created; the writer must not create it
	sum, err := producer.RunRatings(context.Background(), newWriter(t, brokers),
		producer.RatingsConfig{Topic: topic, Count: 100000}, nil, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), topic) {
		t.Fatalf("RunRatings into a missing topic returned %v, want an error naming it", err)
	}
	t.Log(err)
	if sum.Acked != 0 {
		t.Errorf("summary %+v, want nothing acknowledged", sum)
	}
}

func TestRunVisitsWritesTheSeededStream(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := newTopic(t, brokers, 2)
	now := time.Now().Truncate(time.Millisecond)
	cfg := producer.VisitsConfig{
		Topic: topic, AccountIDs: []int64{1, 2}, StoreIDs: []string{"x", "y"}, Frequency: 5000,
		MaxMessages: 500, Seed: 3, LateFraction: 0.2, Now: func() time.Time { return now },
	}
	sum, err := producer.RunVisits(context.Background(), newWriter(t, brokers), cfg, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Log(sum)
	if sum.Acked != 500 || sum.Kind != "visits" {
		t.Fatalf("summary %+v, want 500 visits acknowledged", sum)
	}
	stream, err := producer.NewVisitStream(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]producer.Visit{}
	for range 500 {
		v := stream.Next(now)
		want[v.ID] = v
	}
	late := 0
	for _, m := range readAll(t, brokers, topic, 2) {
		// The topic's own decoder, as the visits agent reads it.
		v, derr := wire.DecodeVisit(m.Value, m.Time, wire.VisitLimits{})
		if derr != nil {
			t.Fatalf("message %s: %v", m.Value, derr)
		}
		w, ok := want[v.ID]
		if !ok || string(m.Key) != v.ID || v.AccountID != w.AccountID || (v.StoreID == nil) != (w.StoreID == nil) ||
			v.Timestamp != w.Timestamp {
			t.Fatalf("message %s (key %s) is not in the seeded stream", m.Value, m.Key)
		}
		delete(want, v.ID)
		if m.Time.UnixMilli() != int64(w.Timestamp*1000+0.5) {
			t.Fatalf("message time %s, visit timestamp %f", m.Time, w.Timestamp)
		}
		if m.Time.Before(now) {
			late++
		}
	}
	if len(want) != 0 {
		t.Fatalf("%d visits missing from the topic", len(want))
	}
	if late == 0 || late > 250 {
		t.Errorf("%d of 500 visits late, want about 100", late)
	}
}

// fakeCluster starts an in-process broker with one topic.
func fakeCluster(t testing.TB, topic string, partitions int32) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// failProduce makes the cluster answer produce requests for the
// partitions failing selects with a non-retriable error.
func failProduce(c *kfake.Cluster, failing func(partition int32) bool) {
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				if !failing(rp.Partition) {
					return nil, nil, false
				}
			}
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = int16(kafka.InvalidRecord)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

func TestRunRatingsCountsFailedMessagesAndGoesOn(t *testing.T) {
	c := fakeCluster(t, "dominate", 4)
	failProduce(c, func(p int32) bool { return p == 0 })
	brokers := c.ListenAddrs()
	sum, err := producer.RunRatings(context.Background(), newWriter(t, brokers),
		producer.RatingsConfig{Count: 4000, Seed: 1, Sending: producer.Sending{BatchSize: 100}}, nil, testLogger(t))
	if err != nil {
		t.Fatalf("RunRatings returned %v with one partition of four failing, want nil", err)
	}
	t.Log(sum)
	if sum.Failed == 0 || sum.Acked == 0 || sum.Acked+sum.Failed != 4000 {
		t.Fatalf("summary %+v, want some failed, the rest acknowledged", sum)
	}
	if got := len(readAll(t, brokers, "dominate", 4)); int64(got) != sum.Acked {
		t.Fatalf("topic holds %d messages, summary says %d acknowledged", got, sum.Acked)
	}
}

func TestRunRatingsGivesUpWhenEveryWriteFails(t *testing.T) {
	c := fakeCluster(t, "dominate", 2)
	failProduce(c, func(int32) bool { return true })
	sum, err := producer.RunRatings(context.Background(), newWriter(t, c.ListenAddrs()),
		producer.RatingsConfig{Seed: 1, Sending: producer.Sending{BatchSize: 10}}, nil, testLogger(t))
	if !errors.Is(err, kafka.InvalidRecord) {
		t.Fatalf("RunRatings returned %v, want the produce error", err)
	}
	t.Log(err)
	if sum.Acked != 0 || sum.Failed < producer.MaxFailedBatches*10 || sum.Failed != sum.Sent {
		t.Fatalf("summary %+v, want every sent message failed", sum)
	}
}

func TestRunRatingsFinishesWritesInFlightAfterCancel(t *testing.T) {
	c := fakeCluster(t, "dominate", 1)
	var held atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !held.Swap(true) {
			<-release // the first write is still in flight when ctx ends
		}
		return nil, nil, false
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type ran struct {
		sum producer.Summary
		err error
	}
	done := make(chan ran, 1)
	w := newWriter(t, c.ListenAddrs())
	go func() {
		sum, err := producer.RunRatings(ctx, w, producer.RatingsConfig{Seed: 1, Rate: 1000}, nil, testLogger(t))
		done <- ran{sum, err}
	}()
	testenv.WaitFor(t, "the first write held by the broker", 10*time.Second, held.Load)
	cancel()
	free()
	r := <-done
	if r.err != nil {
		t.Fatalf("RunRatings returned %v, want nil", r.err)
	}
	t.Log(r.sum)
	if r.sum.Sent == 0 || r.sum.Acked != r.sum.Sent {
		t.Fatalf("summary %+v, want the writes in flight at cancel acknowledged", r.sum)
	}
}

func TestRunRatingsPacesToRate(t *testing.T) {
	c := fakeCluster(t, "dominate", 1)
	sum, err := producer.RunRatings(context.Background(), newWriter(t, c.ListenAddrs()),
		producer.RatingsConfig{Seed: 1, Rate: 400, Count: 200}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// The 200th rating is due 199/400 s after the start: the run's own
	// rate can be at most 400 * 200/199 per second. (How close it comes is
	// BenchmarkRunRatingsPaced's to measure.)
	if sum.Acked != 200 || sum.Rate() > 400*200/199.0 {
		t.Fatalf("200 ratings at 400/s: %+v at %.1f/s, want at most %.1f/s", sum, sum.Rate(), 400*200/199.0)
	}
}

// BenchmarkRunRatingsPaced reports the rate a run paced at 2000/s achieves
// against an in-process broker: go test -run X -bench RunRatingsPaced
// ./producer/
func BenchmarkRunRatingsPaced(b *testing.B) {
	c := fakeCluster(b, "dominate", 1)
	w := newWriter(b, c.ListenAddrs())
	var rate float64
	for b.Loop() {
		sum, err := producer.RunRatings(context.Background(), w, producer.RatingsConfig{Seed: 1, Rate: 2000, Count: 1000}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		rate = sum.Rate()
	}
	b.ReportMetric(rate, "msg/s")
}

func TestRunRatingsRejectsWriterBoundToAnotherTopic(t *testing.T) {
	w := &kafka.Writer{Addr: kafka.TCP("127.0.0.1:1"), Topic: "other"}
	if _, err := producer.RunRatings(context.Background(), w, producer.RatingsConfig{Count: 1}, nil, nil); err == nil {
		t.Fatal("RunRatings accepted a writer bound to another topic")
	}
}

// BenchmarkRunRatings measures unpaced produce throughput into a 4-partition
// topic on the real broker with the default settings: go test -run X
// -bench RunRatings ./producer/
func BenchmarkRunRatings(b *testing.B) {
	benchmarkRun(b, func(ctx context.Context, w *kafka.Writer, topic string, n int64) (producer.Summary, error) {
		return producer.RunRatings(ctx, w, producer.RatingsConfig{Topic: topic, Count: n, Seed: 1}, nil, nil)
	})
}

// BenchmarkRunVisits is BenchmarkRunRatings for visits.
func BenchmarkRunVisits(b *testing.B) {
	benchmarkRun(b, func(ctx context.Context, w *kafka.Writer, topic string, n int64) (producer.Summary, error) {
		cfg := producer.VisitsConfig{Topic: topic, MaxMessages: n, Seed: 1, Frequency: math.Inf(1),
			AccountIDs: []int64{1, 2, 3}, StoreIDs: []string{"a", "b"}, LateFraction: 0.1}
		return producer.RunVisits(ctx, w, cfg, nil, nil)
	})
}

func benchmarkRun(b *testing.B, run func(context.Context, *kafka.Writer, string, int64) (producer.Summary, error)) {
	brokers := testenv.KafkaBrokers(b)
	topic := newTopic(b, brokers, 4)
	w := newWriter(b, brokers)
	const perRun = 500000
	var acked int64
	for b.Loop() {
		sum, err := run(context.Background(), w, topic, perRun)
		if err != nil {
			b.Fatal(err)
		}
		acked += sum.Acked
	}
	b.ReportMetric(float64(acked)/b.Elapsed().Seconds(), "msgs/s")
}
