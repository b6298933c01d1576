package stream

// Scenario 5 of the reliability suite: protocol faults injected with kfake.
// Each test prints one line
//
//	scenario=<name> produced=N landed=N missing=0 duplicated=0 dead_lettered=N
//
// where produced counts the inputs, landed the inputs whose output is in the
// output topic, dead_lettered those whose dead letter is in the dead-letter
// topic (each counted once: Kafka delivers at least once and the stores
// de-duplicate by input), duplicated the inputs found in both, and missing
// those found in neither.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/metrics"
)

// inflate echoes every input as "partition:offset" in the key and value of
// its output, except that an input whose value is "big" yields an output of
// 200 KB. An output Kafka refuses is dead-lettered with the coordinates of
// the input the runner hands back, so a wrong input shows up as one record
// missing and another dead-lettered twice.
type inflate struct{}

func (inflate) Process(m *kafka.Message, out *Output) {
	po := []byte(fmt.Sprintf("%d:%d", m.Partition, m.Offset))
	v := po
	if string(m.Value) == "big" {
		v = []byte(strings.Repeat("x", 200<<10))
	}
	out.Emit(kafka.Message{Topic: "out", Key: po, Value: v})
}

func (inflate) Rejected(m kafka.Message, in *kafka.Message, cause error, out *Output) {
	po := []byte("no input")
	if in != nil {
		po = []byte(fmt.Sprintf("%d:%d", in.Partition, in.Offset))
	}
	out.Emit(kafka.Message{Topic: "dlq", Key: po, Value: po, Headers: []kafka.Header{{Key: "reason", Value: []byte(cause.Error())}}})
}

// acks wraps the worker's producer and records, per input partition, the highest input
// offset whose output Kafka acknowledged (the output's key is
// "partition:offset"), counting the records that succeeded in a partly
// failed write too (kafka.WriteErrors). It fails the first `fail` calls
// itself and counts every call.
type acks struct {
	w     *broker.Producer
	fail  atomic.Int32
	calls atomic.Int32
	mu    sync.Mutex
	hi    map[int]int64
}

// filledCluster starts a cluster whose topics "in" and "out" have
// partitions each, fills "in" with n inputs, and returns the cluster, its
// address and an acks writer to it, closed when the test ends.
func filledCluster(t *testing.T, partitions int32, n int) (*kfake.Cluster, string, *acks) {
	t.Helper()
	c := newCluster(t, partitions, "in", "out")
	addr := c.ListenAddrs()[0]
	fill(t, addr, "in", n)
	aw := newAcks(addr)
	t.Cleanup(func() { aw.w.Close() })
	return c, addr, aw
}

func newAcks(addr string) *acks {
	// The worker's producer, which never retries on its own.
	p, err := broker.NewProducer(broker.Config{Brokers: []string{addr}}, broker.ProducerConfig{})
	if err != nil {
		panic(err)
	}
	return &acks{w: p, hi: map[int]int64{}}
}

func (a *acks) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	a.calls.Add(1)
	if a.fail.Add(-1) >= 0 {
		return errors.New("injected produce failure")
	}
	err := a.w.WriteMessages(ctx, msgs...)
	var werrs kafka.WriteErrors
	partial := errors.As(err, &werrs) && len(werrs) == len(msgs)
	if err != nil && !partial {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, m := range msgs {
		if err != nil && werrs[i] != nil {
			continue
		}
		var p int
		var o int64
		if _, serr := fmt.Sscanf(string(m.Key), "%d:%d", &p, &o); serr == nil {
			if cur, ok := a.hi[p]; !ok || o > cur {
				a.hi[p] = o
			}
		}
	}
	return err
}

// highest returns the highest acknowledged input offset of partition p.
func (a *acks) highest(p int) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.hi[p]
	return v, ok
}

// faultRunner is newRunner with the inflate processor and a writer that
// does not retry on its own, so every produce error reaches the runtime.
func faultRunner(t *testing.T, addr string, w Writer, cfg Config) *Runner {
	t.Helper()
	cfg.Name, cfg.Brokers, cfg.Topic, cfg.GroupID = "test", []string{addr}, "in", "g"
	cfg.SessionTimeout, cfg.HeartbeatInterval = 6*time.Second, 500*time.Millisecond
	r, err := New(cfg, &kafka.Dialer{Timeout: 5 * time.Second}, nil, w,
		func(Partition) Processor { return inflate{} }, metrics.New(), slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fillValues(t *testing.T, addr, topic string, partition int, values []string) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Transport: &kafka.Transport{}, Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return partition })}
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Value: []byte(v)}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatalf("fill %s: %v", topic, err)
	}
}

// values returns the distinct record values of every partition of topic,
// with how many records there were.
func values(t *testing.T, addr, topic string) (map[string]bool, int) {
	t.Helper()
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	parts, err := d.LookupPartitions(context.Background(), "tcp", addr, topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	out, n := map[string]bool{}, 0
	for _, p := range parts {
		conn, err := d.DialLeader(context.Background(), "tcp", addr, topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := conn.ReadOffsets()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if first >= last {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, p.ID, err)
			}
			out[string(m.Value)] = true
			n++
			if m.Offset+1 >= last {
				break
			}
		}
		cancel()
		r.Close()
	}
	return out, n
}

// account prints the scenario line for inputs "p:o" (partition p holding
// counts[p] records) against the out and dlq topics, and fails t if any is
// missing or both landed and dead-lettered.
func account(t *testing.T, scenario, addr string, counts map[int]int, wantDead int) {
	t.Helper()
	landed, outRecords := values(t, addr, "out")
	dead, dlqRecords := map[string]bool{}, 0
	if wantDead > 0 {
		dead, dlqRecords = values(t, addr, "dlq")
	}
	produced, l, d, dup, missing := 0, 0, 0, 0, 0
	var lost []string
	for p, n := range counts {
		for o := range n {
			po := fmt.Sprintf("%d:%d", p, o)
			produced++
			switch {
			case landed[po] && dead[po]:
				l++
				dup++
			case landed[po]:
				l++
			case dead[po]:
				d++
			default:
				missing++
				if len(lost) < 10 {
					lost = append(lost, po)
				}
			}
		}
	}
	line := fmt.Sprintf("scenario=%s produced=%d landed=%d missing=%d duplicated=%d dead_lettered=%d", scenario, produced, l, missing, dup, d)
	fmt.Println(line)
	t.Logf("%s (out holds %d records, dlq %d, before de-duplication)", line, outRecords, dlqRecords)
	if path := os.Getenv("DOMINATION_RELIABILITY_REPORT"); path != "" {
		// Written when the test ends, so the status counts every check.
		t.Cleanup(func() {
			status := "PASS"
			if t.Failed() {
				status = "FAIL"
			}
			if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				fmt.Fprintf(f, "%s %s\n", line, status)
				f.Close()
			}
		})
	}
	if missing != 0 || dup != 0 {
		t.Errorf("%d inputs missing (e.g. %v), %d both landed and dead-lettered", missing, lost, dup)
	}
	if d != wantDead {
		t.Errorf("%d inputs dead-lettered, want %d", d, wantDead)
	}
}

// checkCommits makes every offset commit that reaches the broker be
// checked against what the writer had acknowledged at that moment; it
// returns the number of violations so far.
func checkCommits(c *kfake.Cluster, aw interface{ highest(int) (int64, bool) }) func() (violations, commits int32) {
	var v, n atomic.Int32
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, tp := range req.(*kmsg.OffsetCommitRequest).Topics {
			for _, p := range tp.Partitions {
				n.Add(1)
				hi, ok := aw.highest(int(p.Partition))
				if !ok || p.Offset-1 > hi {
					v.Add(1)
				}
			}
		}
		return nil, nil, false
	})
	return func() (int32, int32) { return v.Load(), n.Load() }
}

// injectFirst answers the first n requests of key that reach the broker
// with fault, and lets the later ones through. It returns the count of
// requests answered so far.
func injectFirst(c *kfake.Cluster, key kmsg.Key, n int32, fault func(kmsg.Request) (kmsg.Response, error)) *atomic.Int32 {
	var injected atomic.Int32
	c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if injected.Load() >= n {
			return nil, nil, false
		}
		injected.Add(1)
		resp, err := fault(req)
		return resp, err, true
	})
	return &injected
}

// produceError answers a produce request with code for every partition.
func produceError(req kmsg.Request, code int16) kmsg.Response {
	pr := req.(*kmsg.ProduceRequest)
	resp := pr.ResponseKind().(*kmsg.ProduceResponse)
	resp.SetVersion(pr.GetVersion())
	for _, t := range pr.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = code
			rp.BaseOffset = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func runUntilCommitted(t *testing.T, r *Runner, addr string, partitions, n int, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after a clean stop", err)
		}
	}()
	testenv.WaitFor(t, fmt.Sprintf("all %d inputs committed", n), within, func() bool {
		return total(committed(t, addr, "g", "in", partitions)) == int64(n)
	})
}

func TestReliabilityProduceErrorsAreRetriedAndNoCommitPassesAnUnacknowledgedOutput(t *testing.T) {
	c, addr, aw := filledCluster(t, 2, 2000)
	check := checkCommits(c, aw)

	// The first produce requests for "out" fail: NOT_LEADER_FOR_PARTITION,
	// then REQUEST_TIMED_OUT, then a connection dropped mid-request.
	faults := []func(kmsg.Request) (kmsg.Response, error){
		func(r kmsg.Request) (kmsg.Response, error) {
			return produceError(r, kerr.NotLeaderForPartition.Code), nil
		},
		func(r kmsg.Request) (kmsg.Response, error) {
			return produceError(r, kerr.NotLeaderForPartition.Code), nil
		},
		func(r kmsg.Request) (kmsg.Response, error) { return produceError(r, kerr.RequestTimedOut.Code), nil },
		func(r kmsg.Request) (kmsg.Response, error) { return produceError(r, kerr.RequestTimedOut.Code), nil },
		func(kmsg.Request) (kmsg.Response, error) { return nil, fmt.Errorf("injected: connection dropped") },
	}
	var injected atomic.Int32
	var mu sync.Mutex
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		i := int(injected.Load())
		if i >= len(faults) || !producesTo(req, "out") {
			return nil, nil, false
		}
		injected.Add(1)
		resp, err := faults[i](req)
		return resp, err, true
	})

	runUntilCommitted(t, faultRunner(t, addr, aw, Config{MaxBatch: 200}), addr, 2, 2000, 60*time.Second)
	if got := injected.Load(); got != int32(len(faults)) {
		t.Fatalf("%d of %d faults were injected", got, len(faults))
	}
	if v, n := check(); v != 0 {
		t.Fatalf("%d of %d commits went past the last acknowledged output", v, n)
	}
	account(t, "kfake-produce-errors", addr, map[int]int{0: 1000, 1: 1000}, 0)
}

func producesTo(req kmsg.Request, topic string) bool {
	for _, t := range req.(*kmsg.ProduceRequest).Topics {
		if t.Topic == topic {
			return true
		}
	}
	return false
}

func TestReliabilityOversizedOutputsAreDeadLetteredAndTheOutputsBatchedWithThemLand(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out", "dlq"),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": "65536"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	in := make([]string, 2000)
	for i := range in {
		in[i] = "small"
		if i%500 == 250 {
			in[i] = "big" // its output (200 KB) is over the broker's 64 KB limit
		}
	}
	fillValues(t, addr, "in", 0, in)
	aw := newAcks(addr)
	defer aw.w.Close()
	check := checkCommits(c, aw)

	runUntilCommitted(t, faultRunner(t, addr, aw, Config{MaxBatch: 300}), addr, 1, 2000, 60*time.Second)
	if v, n := check(); v != 0 {
		t.Fatalf("%d of %d commits went past the last acknowledged output", v, n)
	}
	account(t, "kfake-message-too-large", addr, map[int]int{0: 2000}, 4)
}

// commitFault answers an offset commit with code for every partition, or
// drops the connection when code is 0.
func commitFault(req kmsg.Request, code int16) (kmsg.Response, error) {
	if code == 0 {
		return nil, fmt.Errorf("injected: connection dropped")
	}
	oc := req.(*kmsg.OffsetCommitRequest)
	resp := oc.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.SetVersion(oc.GetVersion())
	for _, t := range oc.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func TestReliabilityCommitErrorsNeitherLoseNorStallAPartition(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int16
	}{
		{"rebalance-in-progress", kerr.RebalanceInProgress.Code},
		{"dropped-connection", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, addr, aw := filledCluster(t, 2, 2000)
			// The fault is added first, so it sees the commits before the
			// checker does; a failed commit is not checked.
			injected := injectFirst(c, kmsg.OffsetCommit, 2, func(req kmsg.Request) (kmsg.Response, error) {
				return commitFault(req, tc.code)
			})
			check := checkCommits(c, aw)
			runUntilCommitted(t, faultRunner(t, addr, aw, Config{MaxBatch: 100}), addr, 2, 2000, 45*time.Second)
			if got := injected.Load(); got != 2 {
				t.Fatalf("%d of 2 commit faults were injected", got)
			}
			if v, n := check(); v != 0 {
				t.Fatalf("%d of %d commits went past the last acknowledged output", v, n)
			}
			account(t, "kfake-commit-"+tc.name, addr, map[int]int{0: 1000, 1: 1000}, 0)
		})
	}
}
