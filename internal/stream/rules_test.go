package stream

// One test per rule of the package doc.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/metrics"
)

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// runnerWith is newRunner with a factory of its own.
func runnerWith(t *testing.T, addr string, w Writer, cfg Config, f Factory) *Runner {
	t.Helper()
	cfg.Name, cfg.Brokers, cfg.Topic, cfg.GroupID = "test", []string{addr}, "in", "g"
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 6 * time.Second
	}
	cfg.HeartbeatInterval = 500 * time.Millisecond
	r, err := New(cfg, &kafka.Dialer{Timeout: 5 * time.Second}, nil, w, f, metrics.New(), slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs r until the returned stop is called; stop returns Run's error.
func start(r *Runner) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() error { cancel(); return <-done }
}

// outage makes heartbeats fail while heartbeats is set, and commits while
// commits is set, as a broker that cannot be reached does; it counts the
// refused heartbeats.
type outage struct {
	heartbeats, commits atomic.Bool
	refused             atomic.Int32
}

func (o *outage) inject(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.Heartbeat), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !o.heartbeats.Load() {
			return nil, nil, false
		}
		o.refused.Add(1)
		return nil, errors.New("injected: broker unreachable"), true
	})
	c.ControlKey(int16(kmsg.OffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !o.commits.Load() {
			return nil, nil, false
		}
		return nil, errors.New("injected: broker unreachable"), true
	})
}

func TestReliabilityAnOutageLongerThanTheDrainTimeoutEndsNoGenerationAndLosesNothing(t *testing.T) {
	c, addr, aw := filledCluster(t, 2, 1000)
	var o outage
	o.inject(c)
	check := checkCommits(c, aw)
	var writesDown atomic.Bool
	down := writerFunc(func(ctx context.Context, msgs ...kafka.Message) error {
		if writesDown.Load() {
			return errors.New("injected: broker unreachable")
		}
		return aw.WriteMessages(ctx, msgs...)
	})
	// The outage outlasts the drain timeout many times over, and stays
	// within the session timeout, so the coordinator keeps the member.
	r := runnerWith(t, addr, down, Config{MaxBatch: 100, DrainTimeout: 500 * time.Millisecond, SessionTimeout: 30 * time.Second}, func(Partition) Processor { return inflate{} })
	stop := start(r)
	defer stop()
	testenv.WaitFor(t, "a first commit", 20*time.Second, func() bool { return total(committed(t, addr, "g", "in", 2)) > 0 })

	// First produce fails, then commit, heartbeats all along; each phase
	// lasts six refused heartbeats (500ms apart), several drain timeouts.
	writesDown.Store(true)
	o.heartbeats.Store(true)
	fill(t, addr, "in", 1000) // inputs keep arriving during the outage
	testenv.WaitFor(t, "produce failures over six refused heartbeats", 30*time.Second, func() bool {
		return counterValue(r.produceErrs) > 0 && o.refused.Load() >= 6
	})
	o.commits.Store(true)
	writesDown.Store(false)
	testenv.WaitFor(t, "commit failures over six more refused heartbeats", 30*time.Second, func() bool {
		return counterValue(r.commitErrs) > 0 && o.refused.Load() >= 12
	})
	o.commits.Store(false)
	o.heartbeats.Store(false)

	testenv.WaitFor(t, "all 2000 inputs committed", 60*time.Second, func() bool { return total(committed(t, addr, "g", "in", 2)) == 2000 })
	if n := counterValue(r.rebalances); n != 1 {
		t.Fatalf("joined %v generations, want 1: the outage ended the generation", n)
	}
	if v, n := check(); v != 0 {
		t.Fatalf("%d of %d commits went past the last acknowledged output", v, n)
	}
	account(t, "kfake-outage-no-rebalance", addr, map[int]int{0: 1000, 1: 1000}, 0)
}

func TestAStopDuringABlockedWriteReturnsWithinTheDrainTimeout(t *testing.T) {
	c := newCluster(t, 1, "in", "out")
	addr := c.ListenAddrs()[0]
	fill(t, addr, "in", 100)
	var writing atomic.Int32
	blocked := writerFunc(func(ctx context.Context, _ ...kafka.Message) error {
		writing.Add(1)
		<-ctx.Done() // a broker that never answers
		return ctx.Err()
	})
	const drain = time.Second
	r := runnerWith(t, addr, blocked, Config{DrainTimeout: drain}, func(Partition) Processor { return echo{topic: "out"} })
	stop := start(r)
	testenv.WaitFor(t, "a write in flight", 20*time.Second, func() bool { return writing.Load() > 0 })
	began := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if took := time.Since(began); took > drain+time.Second {
		t.Fatalf("Run returned %s after the stop, want within DrainTimeout (%s) + 1s", took, drain)
	}
	if got := committed(t, addr, "g", "in", 1)[0]; got > 0 {
		t.Fatalf("committed offset %d past a write that never succeeded", got)
	}
}

// tally is a Committer: for every input it emits "offset:n", n being how
// many records of the partition it has counted, its state, rebuilt from the
// commit metadata. Started from empty state at a later offset, it would
// emit counts an offline recomputation (n = offset + 1) does not give.
type tally struct {
	n      int64
	closed *atomic.Int32
}

func newTally(p Partition, closed *atomic.Int32) *tally {
	t := &tally{closed: closed}
	if s, ok := strings.CutPrefix(p.Metadata, "n="); ok {
		t.n, _ = strconv.ParseInt(s, 10, 64)
	}
	return t
}

func (t *tally) Process(m *kafka.Message, out *Output) {
	t.n++
	v := []byte(fmt.Sprintf("%d:%d", m.Offset, t.n))
	out.Emit(kafka.Message{Topic: "out", Key: v, Value: v})
}
func (t *tally) Rejected(kafka.Message, *kafka.Message, error, *Output) {}
func (t *tally) Commit(next int64) (int64, string)                      { return next, "n=" + strconv.FormatInt(t.n, 10) }
func (t *tally) Close() {
	if t.closed != nil {
		t.closed.Add(1)
	}
}

func TestMetadataReadsThatFailAreRetriedAndTheStateIsRebuiltNotEmptied(t *testing.T) {
	c, addr, aw := filledCluster(t, 1, 500)
	factory := func(p Partition) Processor { return newTally(p, nil) }
	stop := start(runnerWith(t, addr, aw, Config{MaxBatch: 100}, factory))
	testenv.WaitFor(t, "500 inputs committed", 20*time.Second, func() bool { return committed(t, addr, "g", "in", 1)[0] == 500 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// The next owner's reads of the commit metadata fail three times.
	failed := injectFirst(c, kmsg.OffsetFetch, 3, func(kmsg.Request) (kmsg.Response, error) {
		return nil, errors.New("injected: offset fetch dropped")
	})
	fill(t, addr, "in", 500)
	stop = start(runnerWith(t, addr, aw, Config{MaxBatch: 100}, factory))
	defer stop()
	// Nothing else reads offsets until the three failures have happened.
	testenv.WaitFor(t, "three failed metadata reads", 30*time.Second, func() bool { return failed.Load() == 3 })
	testenv.WaitFor(t, "1000 inputs committed", 30*time.Second, func() bool { return committed(t, addr, "g", "in", 1)[0] == 1000 })
	got, _ := values(t, addr, "out")
	for o := range 1000 {
		if want := fmt.Sprintf("%d:%d", o, o+1); !got[want] {
			t.Fatalf("no output %q: the state was not rebuilt from the commit metadata (outputs %d)", want, len(got))
		}
	}
	for v := range got {
		var o, n int
		fmt.Sscanf(v, "%d:%d", &o, &n)
		if n != o+1 {
			t.Fatalf("output %q differs from the offline recomputation %d:%d", v, o, o+1)
		}
	}
}

func TestProcessorsAreClosedWhenTheirPartitionIsRevokedOrTheRunnerStops(t *testing.T) {
	_, addr, aw := filledCluster(t, 2, 100)
	var made, closed atomic.Int32
	factory := func(p Partition) Processor { made.Add(1); return newTally(p, &closed) }
	a := runnerWith(t, addr, aw, Config{}, factory)
	stopA := start(a)
	testenv.WaitFor(t, "the first runner to own both partitions", 20*time.Second, func() bool { return len(a.Owned()) == 2 })
	stopB := start(runnerWith(t, addr, aw, Config{}, factory))
	// The second member's join ends the first generation: the first
	// runner's two processors are closed.
	testenv.WaitFor(t, "the first generation's processors closed", 30*time.Second, func() bool { return closed.Load() >= 2 })
	testenv.WaitFor(t, "the partitions shared", 30*time.Second, func() bool { return len(a.Owned()) == 1 })
	if err := errors.Join(stopA(), stopB()); err != nil {
		t.Fatal(err)
	}
	if m, c := made.Load(), closed.Load(); m != c || m < 4 {
		t.Fatalf("%d processors made, %d closed", m, c)
	}
}

// ticking is a Ticker and a Committer whose ticks change its metadata.
type ticking struct{ ticks int }

func (t *ticking) Process(*kafka.Message, *Output)                        {}
func (t *ticking) Rejected(kafka.Message, *kafka.Message, error, *Output) {}
func (t *ticking) Tick(time.Time, *Output)                                { t.ticks++ }
func (t *ticking) Commit(next int64) (int64, string)                      { return next, "ticks=" + strconv.Itoa(t.ticks) }

func TestATickThatChangesTheStateIsCommittedBeforeTheNextRecord(t *testing.T) {
	_, addr, aw := filledCluster(t, 1, 10)
	stop := start(runnerWith(t, addr, aw, Config{TickInterval: 100 * time.Millisecond}, func(Partition) Processor { return &ticking{} }))
	defer stop()
	cl := &kafka.Client{Addr: kafka.TCP(addr)}
	testenv.WaitFor(t, "a commit carrying a tick", 20*time.Second, func() bool {
		res, err := cl.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: "g", Topics: map[string][]int{"in": {0}}})
		if err != nil || len(res.Topics["in"]) == 0 {
			return false
		}
		p := res.Topics["in"][0]
		return p.CommittedOffset == 10 && p.Metadata != "" && p.Metadata != "ticks=0"
	})
}

func TestRunLeavesNoGoroutineBehind(t *testing.T) {
	c := newCluster(t, 2, "in", "out")
	addr := c.ListenAddrs()[0]
	fill(t, addr, "in", 500)
	aw := newAcks(addr)
	before := settledGoroutines(t)
	r := runnerWith(t, addr, aw, Config{MaxBatch: 100}, func(p Partition) Processor { return newTally(p, nil) })
	stop := start(r)
	// Observed through the runner's metric: a client of the test's own
	// would start goroutines of its own.
	testenv.WaitFor(t, "500 inputs committed", 20*time.Second, func() bool { return counterValue(r.committed) == 500 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	aw.w.Close() // closes the producer's idle connections
	noGoroutineLeft(t, before, "Run")
}

// settledGoroutines waits for the test's own goroutines to settle and
// returns how many there are.
func settledGoroutines(t *testing.T) int {
	t.Helper()
	testenv.WaitFor(t, "the test's own goroutines to settle", 10*time.Second, func() bool { return runtime.NumGoroutine() < 1000 })
	return runtime.NumGoroutine()
}

// noGoroutineLeft fails t unless, within 10 s, no more goroutines run than
// the before that settledGoroutines counted before what started.
func noGoroutineLeft(t *testing.T, before int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines after %s returned, %d before it started:\n%s", runtime.NumGoroutine(), what, before, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTheLeaderRejoinsWhenTheTopicGainsPartitions(t *testing.T) {
	c := newCluster(t, 1, "in", "out")
	addr := c.ListenAddrs()[0]
	aw := newAcks(addr)
	defer aw.w.Close()
	r := runnerWith(t, addr, aw, Config{}, func(Partition) Processor { return echo{topic: "out"} })
	stop := start(r)
	defer stop()
	testenv.WaitFor(t, "partition 0 owned", 20*time.Second, func() bool { return len(r.Owned()) == 1 })
	cl := &kafka.Client{Addr: kafka.TCP(addr)}
	res, err := cl.CreatePartitions(context.Background(), &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: "in", Count: 2}}})
	if err == nil {
		err = res.Errors["in"]
	}
	if err != nil {
		t.Fatalf("add a partition: %v", err)
	}
	testenv.WaitFor(t, "both partitions owned", 30*time.Second, func() bool { return len(r.Owned()) == 2 })
	if n := counterValue(r.rebalances); n != 2 {
		t.Fatalf("joined %v generations, want 2", n)
	}
}
