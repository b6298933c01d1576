package stream

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/metrics"
)

// echo emits, for every input, one output whose key and value name the
// input's partition and offset, so a test can tell which inputs were
// acknowledged.
type echo struct{ topic string }

func (e echo) Process(m *kafka.Message, out *Output) {
	po := []byte(fmt.Sprintf("%d:%d", m.Partition, m.Offset))
	out.Emit(kafka.Message{Topic: e.topic, Key: po, Value: po})
}

func (e echo) Rejected(kafka.Message, *kafka.Message, error, *Output) {}

func newCluster(t *testing.T, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatalf("start in-process kafka: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func fill(t *testing.T, addr, topic string, n int) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Transport: &kafka.Transport{}, Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Balancer: &kafka.RoundRobin{}}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(strconv.Itoa(i)), Value: []byte("in")}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatalf("fill %s: %v", topic, err)
	}
}

func committed(t *testing.T, addr, group, topic string, parts int) map[int]int64 {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(addr)}
	ps := make([]int, parts)
	for i := range ps {
		ps[i] = i
	}
	res, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

func total(m map[int]int64) int64 {
	var n int64
	for _, v := range m {
		if v > 0 {
			n += v
		}
	}
	return n
}

func newRunner(t *testing.T, addr string, w Writer, cfg Config) *Runner {
	t.Helper()
	cfg.Name, cfg.Brokers, cfg.Topic, cfg.GroupID = "test", []string{addr}, "in", "g"
	cfg.SessionTimeout, cfg.HeartbeatInterval = 6*time.Second, 500*time.Millisecond
	r, err := New(cfg, &kafka.Dialer{Timeout: 5 * time.Second}, nil, w,
		func(Partition) Processor { return echo{topic: "out"} }, metrics.New(), slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunnerNeverCommitsPastAnUnacknowledgedOutput(t *testing.T) {
	c, addr, aw := filledCluster(t, 2, 2000)
	aw.fail.Store(3)

	// Every offset commit that reaches the broker is checked against what
	// the writer had acknowledged at that moment.
	check := checkCommits(c, aw)
	runUntilCommitted(t, newRunner(t, addr, aw, Config{MaxBatch: 300}), addr, 2, 2000, 30*time.Second)
	if v, n := check(); v != 0 {
		t.Fatalf("%d of %d commits went past the last acknowledged output", v, n)
	}
	if aw.calls.Load() <= 3 {
		t.Fatalf("the injected failures were not retried: %d write calls", aw.calls.Load())
	}
}

func TestRunnerDrainsAndCommitsTheBatchItHoldsOnStop(t *testing.T) {
	c := newCluster(t, 1, "in", "out")
	addr := c.ListenAddrs()[0]
	fill(t, addr, "in", 500)

	// A slow writer: the stop arrives while a batch is being produced.
	aw := newAcks(addr)
	defer aw.w.Close()
	slow := writerFunc(func(ctx context.Context, msgs ...kafka.Message) error {
		time.Sleep(300 * time.Millisecond)
		return aw.WriteMessages(ctx, msgs...)
	})
	r := newRunner(t, addr, slow, Config{MaxBatch: 100})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	testenv.WaitFor(t, "a first write", 20*time.Second, func() bool { return aw.calls.Load() > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after a clean stop", err)
	}
	hi, ok := aw.highest(0)
	if !ok {
		t.Fatal("nothing was acknowledged")
	}
	if got := committed(t, addr, "g", "in", 1)[0]; got != hi+1 {
		t.Fatalf("committed offset %d after stop, want %d (one past the last acknowledged input)", got, hi+1)
	}
}

type writerFunc func(ctx context.Context, msgs ...kafka.Message) error

func (f writerFunc) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	return f(ctx, msgs...)
}

func TestConfigValidateNamesTheMissingSetting(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Name"},
		{Config{Name: "a"}, "Brokers"},
		{Config{Name: "a", Brokers: []string{"x:1"}}, "Topic"},
		{Config{Name: "a", Brokers: []string{"x:1"}, Topic: "t"}, "GroupID"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// offsets records the input offsets a processor sees, in order.
type offsets struct {
	echo
	seen *[]int64
}

func (o offsets) Process(m *kafka.Message, out *Output) {
	*o.seen = append(*o.seen, m.Offset)
	o.echo.Process(m, out)
}

func TestAFetchLargerThanTheBatchIsProcessedInOrderInBatchesOfAtMostMaxBatch(t *testing.T) {
	const n, maxBatch = 5000, 7
	_, addr, aw := filledCluster(t, 1, n)
	var mu sync.Mutex
	largest := 0
	sized := writerFunc(func(ctx context.Context, msgs ...kafka.Message) error {
		mu.Lock()
		largest = max(largest, len(msgs))
		mu.Unlock()
		return aw.WriteMessages(ctx, msgs...)
	})
	var seen []int64
	r := newRunner(t, addr, sized, Config{MaxBatch: maxBatch})
	r.factory = func(Partition) Processor { return offsets{echo: echo{topic: "out"}, seen: &seen} }
	runUntilCommitted(t, r, addr, 1, n, time.Minute)
	if largest > maxBatch {
		t.Errorf("a batch produced %d records, more than MaxBatch %d", largest, maxBatch)
	}
	if len(seen) != n {
		t.Fatalf("processed %d records, want %d", len(seen), n)
	}
	for i, o := range seen {
		if o != int64(i) {
			t.Fatalf("record %d processed was offset %d: not in order, or repeated", i, o)
		}
	}
}

// aliasing emits each input's own key and value bytes, as the shadow
// agent emits the input's id as its output's key.
type aliasing struct{}

func (aliasing) Process(m *kafka.Message, out *Output) {
	out.Emit(kafka.Message{Topic: "out", Key: m.Key, Value: m.Value})
}

func (aliasing) Rejected(kafka.Message, *kafka.Message, error, *Output) {}

// Response buffers are reused once the batches holding their records are
// produced: with fetches of a few records and batches gathering several
// responses, every output that aliases its input, read from the shared
// Kafka, still carries the input's bytes when it is produced.
func TestOutputsAliasingTheirInputsSurviveTheReuseOfResponseBuffers(t *testing.T) {
	brokers, topic := newTopic(t)
	const n = 3000
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Transport: &kafka.Transport{}, Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 25}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("value of record %06d %s", i, strings.Repeat("x", i%40)))}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	var mu sync.Mutex
	wrong, written := 0, 0
	checked := writerFunc(func(ctx context.Context, out ...kafka.Message) error {
		// Slow enough for the fetcher to read ahead into any buffer
		// handed back too early.
		time.Sleep(time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		for _, m := range out {
			i, err := strconv.Atoi(string(m.Key))
			if err != nil || i < 0 || i >= n || string(m.Value) != string(msgs[i].Value) {
				wrong++
			}
			written++
		}
		return nil
	})
	cfg := Config{Name: "test", Brokers: brokers, Topic: topic, GroupID: testenv.Name(t, "g"), MaxBatch: 200, MaxWait: 50 * time.Millisecond, FetchMaxBytes: 2048,
		SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond}
	r, err := New(cfg, &kafka.Dialer{Timeout: 5 * time.Second}, nil, checked, func(Partition) Processor { return aliasing{} }, metrics.New(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	testenv.WaitFor(t, "every output written", time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return written >= n
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after a clean stop", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if wrong > 0 {
		t.Fatalf("%d of %d outputs written did not carry their input's bytes", wrong, written)
	}
}

// stamping emits each input's offset with the time out.Now gave it.
type stamping struct{ echo }

func (s stamping) Process(m *kafka.Message, out *Output) {
	v := []byte(fmt.Sprintf("%d %d", m.Offset, out.Now().UnixNano()))
	out.Emit(kafka.Message{Topic: s.topic, Key: v, Value: v})
}

// Output.Now is one reading of the clock per batch: every record of a
// batch gets the same time, later batches no earlier ones, and each
// reading lies within the run.
func TestOutputNowIsOneReadingOfTheClockPerBatch(t *testing.T) {
	const n, maxBatch = 300, 7
	_, addr, aw := filledCluster(t, 1, n)
	var mu sync.Mutex
	var batches [][]int64 // each batch's readings, in offset order
	stamped := writerFunc(func(ctx context.Context, msgs ...kafka.Message) error {
		var b []int64
		for _, m := range msgs {
			var off, at int64
			if _, err := fmt.Sscanf(string(m.Value), "%d %d", &off, &at); err != nil {
				return err
			}
			b = append(b, at)
		}
		if err := aw.WriteMessages(ctx, msgs...); err != nil {
			return err
		}
		mu.Lock()
		batches = append(batches, b)
		mu.Unlock()
		return nil
	})
	start := time.Now().UnixNano()
	r := newRunner(t, addr, stamped, Config{MaxBatch: maxBatch})
	r.factory = func(Partition) Processor { return stamping{echo{topic: "out"}} }
	runUntilCommitted(t, r, addr, 1, n, time.Minute)
	end := time.Now().UnixNano()

	mu.Lock()
	defer mu.Unlock()
	if len(batches) < n/maxBatch {
		t.Fatalf("%d batches for %d records of at most %d: fewer than there must be", len(batches), n, maxBatch)
	}
	last := start
	for i, b := range batches {
		for _, at := range b[1:] {
			if at != b[0] {
				t.Fatalf("batch %d has readings %v: want one for the whole batch", i, b)
			}
		}
		if b[0] < last || b[0] > end {
			t.Fatalf("batch %d read the clock at %d: before the batch before it (%d) or after the run (%d)", i, b[0], last, end)
		}
		last = b[0]
	}
	var zero Output
	if got := zero.Now(); time.Since(got) > time.Minute || got.IsZero() {
		t.Errorf("an Output the runtime did not fill gave %v: want the clock now", got)
	}
}
