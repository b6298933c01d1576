package stream

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/domination/domination/internal/backoff"
	"github.com/domination/domination/internal/testenv"
)

// writeAt writes one record per value to topic's partition 0, stamped at.
func writeAt(t *testing.T, addr, topic string, at time.Time, values ...string) {
	t.Helper()
	tr := &kafka.Transport{}
	// The writer's connections end with the call, not to count as the
	// reader's goroutines.
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Transport: tr, Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Value: []byte(v), Time: at}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatalf("write to %s: %v", topic, err)
	}
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// partitionRead collects what ReadPartition hands over.
type partitionRead struct {
	mu        sync.Mutex
	values    []string
	offsets   []int64
	responses int
	failures  int
}

func (r *partitionRead) got(records []kafka.Message, _ int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.responses++
	for _, m := range records {
		r.values = append(r.values, string(m.Value))
		r.offsets = append(r.offsets, m.Offset)
	}
}

func (r *partitionRead) failed(error) {
	r.mu.Lock()
	r.failures++
	r.mu.Unlock()
}

func (r *partitionRead) read() (values []string, offsets []int64, responses int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.values), slices.Clone(r.offsets), r.responses
}

func (r *partitionRead) failedTimes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failures
}

func TestReadPartitionStartsAtTheReplayStartAndResumesAfterFailuresWithoutGapOrRepeat(t *testing.T) {
	c := newCluster(t, 1, "in")
	addr := c.ListenAddrs()[0]
	writeAt(t, addr, "in", time.Now().Add(-time.Hour), "old-0", "old-1") // before the replay start
	writeAt(t, addr, "in", time.Now(), "new-0", "new-1")
	before := settledGoroutines(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var r partitionRead
	done := make(chan error, 1)
	go func() {
		done <- ReadPartition(ctx, ReaderConfig{
			Brokers: []string{addr}, Dialer: &kafka.Dialer{Timeout: 5 * time.Second}, Topic: "in",
			Replay: 10 * time.Minute, MaxWait: 50 * time.Millisecond,
			Retry: backoff.Config{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}, Log: testLog(t),
		}, r.got, r.failed)
	}()
	testenv.WaitFor(t, "the records since the replay start", 10*time.Second, func() bool {
		values, _, _ := r.read()
		return len(values) == 2
	})
	// A caught-up partition is answered empty: those answers reach got too.
	_, _, n := r.read()
	testenv.WaitFor(t, "empty answers on the caught-up partition", 10*time.Second, func() bool {
		_, _, responses := r.read()
		return responses > n
	})

	// An outage of three fetches, each ending its connection, while
	// records keep arriving. The control runs on the cluster's goroutine.
	refused := 0
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if refused++; refused == 3 {
			c.DropControl()
		}
		return nil, errors.New("injected: broker unreachable"), true
	})
	writeAt(t, addr, "in", time.Now(), "new-2", "new-3")
	testenv.WaitFor(t, "failed fetches reported", 10*time.Second, func() bool { return r.failedTimes() >= 3 })
	writeAt(t, addr, "in", time.Now(), "new-4")
	testenv.WaitFor(t, "every record after the outage", 10*time.Second, func() bool {
		values, _, _ := r.read()
		return len(values) == 5
	})

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ReadPartition = %v", err)
	}
	values, offsets, _ := r.read()
	want := []string{"new-0", "new-1", "new-2", "new-3", "new-4"}
	if !slices.Equal(values, want) || !slices.Equal(offsets, []int64{2, 3, 4, 5, 6}) {
		t.Fatalf("read %q at offsets %v, want %q at 2..6", values, offsets, want)
	}
	noGoroutineLeft(t, before, "ReadPartition")
}

func TestReadPartitionWithNoRecordSinceTheReplayStartReadsFromTheEnd(t *testing.T) {
	c := newCluster(t, 1, "in")
	addr := c.ListenAddrs()[0]
	writeAt(t, addr, "in", time.Now().Add(-time.Hour), "old-0", "old-1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var r partitionRead
	done := make(chan error, 1)
	go func() {
		done <- ReadPartition(ctx, ReaderConfig{Brokers: []string{addr}, Topic: "in", Replay: time.Minute, MaxWait: 50 * time.Millisecond, Log: testLog(t)}, r.got, r.failed)
	}()
	testenv.WaitFor(t, "a first answer", 10*time.Second, func() bool {
		_, _, responses := r.read()
		return responses > 0
	})
	writeAt(t, addr, "in", time.Now(), "new-0")
	testenv.WaitFor(t, "the new record", 10*time.Second, func() bool {
		values, _, _ := r.read()
		return len(values) > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ReadPartition = %v", err)
	}
	if values, offsets, _ := r.read(); !slices.Equal(values, []string{"new-0"}) || offsets[0] != 2 {
		t.Fatalf("read %q at offsets %v, want only new-0 at 2", values, offsets)
	}
}

func TestReadPartitionRefusesAConfigWithoutBrokersOrTopic(t *testing.T) {
	for _, cfg := range []ReaderConfig{{Topic: "in"}, {Brokers: []string{"127.0.0.1:9092"}}} {
		err := ReadPartition(context.Background(), cfg, func([]kafka.Message, int64) {}, nil)
		if err == nil || !strings.Contains(err.Error(), "required") {
			t.Errorf("ReadPartition(%+v) = %v, want a required setting named", cfg, err)
		}
	}
}
