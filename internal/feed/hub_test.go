package feed

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/domination/domination/metrics"
)

// fakeHistory is a History held in memory, with hooks for fault injection
// and for publishing while a client's history is being read.
type fakeHistory struct {
	mu       sync.Mutex
	counts   []Count
	err      error
	delay    time.Duration
	onRecent func() // called at the start of every Recent
	calls    int
	pingErr  error
}

func (h *fakeHistory) set(counts ...Count) {
	h.mu.Lock()
	h.counts = append([]Count(nil), counts...)
	h.mu.Unlock()
}

func (h *fakeHistory) add(counts ...Count) {
	h.mu.Lock()
	h.counts = append(h.counts, counts...)
	h.mu.Unlock()
}

func (h *fakeHistory) Recent(ctx context.Context, account *int64, n int) ([]Count, error) {
	h.mu.Lock()
	h.calls++
	hook, delay := h.onRecent, h.delay
	h.mu.Unlock()
	if hook != nil {
		hook()
	}
	if delay > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return nil, h.err
	}
	byKey := map[windowKey]Count{}
	for _, c := range h.counts {
		if account == nil || *account == c.AccountID {
			byKey[c.key()] = c
		}
	}
	out := make([]Count, 0, len(byKey))
	for _, c := range byKey {
		out = append(out, c)
	}
	return lastN(out, n), nil
}

func (h *fakeHistory) Ping(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pingErr
}

func newTestHub(t *testing.T, history History) *hub {
	t.Helper()
	return newHub(slog.New(slog.DiscardHandler), metrics.New(), history, 100, time.Second, hubLimits{maxClients: 10, pending: 100})
}

// testSub is a subscriber without a connection: its queue is read by the
// test.
type testSub struct {
	*subscriber
	mu      sync.Mutex
	stopped []int
}

func newTestSub(queue int) *testSub {
	ts := &testSub{}
	ts.subscriber = &subscriber{queue: make(chan outItem, queue), stop: func(code int, _ string) {
		ts.mu.Lock()
		ts.stopped = append(ts.stopped, code)
		ts.mu.Unlock()
	}}
	return ts
}

// subscribe adds a subscriber of queue 16 to h and syncs it to f with a
// history of n counts.
func subscribe(t *testing.T, h *hub, f filter, n int) *testSub {
	t.Helper()
	s := newTestSub(16)
	if err := h.add(s.subscriber); err != nil {
		t.Fatal(err)
	}
	if err := h.sync(context.Background(), s.subscriber, f, n); err != nil {
		t.Fatal(err)
	}
	return s
}

// drain returns the counts queued so far, in order.
func (ts *testSub) drain(t *testing.T) []Count {
	t.Helper()
	var out []Count
	for {
		select {
		case it := <-ts.queue:
			frames := it.batch
			if it.frame != nil {
				frames = [][]byte{it.frame}
			}
			for _, fr := range frames {
				out = append(out, decodeFrame(t, fr).count())
			}
		default:
			return out
		}
	}
}

func win(account int64, start int64, n uint64) Count {
	return Count{AccountID: account, StoreID: str("uk"), Start: start, End: start + 10, Count: n}
}

func TestSyncSendsHistoryThenLiveWithoutGapOrRepeatAtTheSeam(t *testing.T) {
	hist := &fakeHistory{}
	h := newTestHub(t, hist)
	// ClickHouse holds the old windows 0..20; Kafka (the ring) 20..40.
	hist.set(win(1, 0, 1), win(1, 10, 1), win(1, 20, 1))
	for _, c := range []Count{win(1, 20, 1), win(1, 30, 1), win(1, 40, 1)} {
		h.publish(c)
	}
	// While the history is read, 50 and 60 arrive on Kafka and ClickHouse
	// already has 50: it must be sent once. 60 changes count later.
	hist.onRecent = func() {
		h.publish(win(1, 50, 1))
		hist.add(win(1, 50, 1))
		h.publish(win(1, 60, 1))
		h.publish(win(1, 60, 2))
	}
	s := subscribe(t, h, filter{}, 100)
	h.publish(win(1, 70, 1))
	h.publish(win(1, 70, 1)) // re-emitted after a restart: not sent again

	want := []Count{win(1, 0, 1), win(1, 10, 1), win(1, 20, 1), win(1, 30, 1), win(1, 40, 1), win(1, 50, 1),
		win(1, 60, 1), win(1, 60, 2), win(1, 70, 1)}
	if got := s.drain(t); !reflect.DeepEqual(got, want) {
		t.Errorf("client got\n%v\nwant\n%v", got, want)
	}
	if got := value(t, h.m.FeedDuplicates); got != 1 {
		t.Errorf("duplicates = %v, want 1", got)
	}
}

func TestSyncDoesNotRepeatWhatClickHouseHadBeforeTheReader(t *testing.T) {
	// The worker just started: its reader replays windows that ClickHouse
	// already holds. A client connecting meanwhile gets them in its history
	// and must not get them again when the reader publishes them.
	hist := &fakeHistory{}
	hist.set(win(1, 0, 1), win(1, 10, 1), win(1, 20, 1), win(1, 30, 4))
	h := newTestHub(t, hist)
	h.publish(win(1, 0, 1))
	s := subscribe(t, h, filter{}, 10)
	h.publish(win(1, 10, 1)) // replayed: already sent
	h.publish(win(1, 20, 1)) // replayed: already sent
	h.publish(win(1, 30, 5)) // another count than ClickHouse's: an update
	h.publish(win(1, 40, 1)) // new
	h.publish(win(1, 10, 1)) // a re-emission: the ring has it now
	want := []Count{win(1, 0, 1), win(1, 10, 1), win(1, 20, 1), win(1, 30, 4), win(1, 30, 5), win(1, 40, 1)}
	if got := s.drain(t); !reflect.DeepEqual(got, want) {
		t.Errorf("client got\n%v\nwant\n%v", got, want)
	}
	// Another client, connecting later, has nothing to skip.
	late := subscribe(t, h, filter{}, 2)
	h.publish(win(1, 50, 1))
	want = []Count{win(1, 30, 5), win(1, 40, 1), win(1, 50, 1)}
	if got := late.drain(t); !reflect.DeepEqual(got, want) {
		t.Errorf("late client got %v, want %v", got, want)
	}
}

func TestSyncKeepsTheLastNAndTheFilter(t *testing.T) {
	tests := []struct {
		name string
		f    filter
		n    int
		want []Count
	}{
		{"all, last 3", filter{}, 3, []Count{win(2, 10, 1), win(1, 20, 1), win(2, 20, 1)}},
		{"account 1", filter{account: i64(1)}, 10, []Count{win(1, 0, 1), win(1, 10, 1), win(1, 20, 1)}},
		{"account 2, last 2", filter{account: i64(2)}, 2, []Count{win(2, 10, 1), win(2, 20, 1)}},
		{"no history", filter{}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hist := &fakeHistory{}
			hist.set(win(1, 0, 1), win(2, 0, 1), win(1, 10, 1))
			h := newTestHub(t, hist)
			h.publish(win(2, 10, 1))
			h.publish(win(1, 20, 1))
			h.publish(win(2, 20, 1))
			s := subscribe(t, h, tt.f, tt.n)
			if got := s.drain(t); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			// Live counts follow the filter too.
			h.publish(win(1, 1000, 1))
			live := s.drain(t)
			if tt.f.account != nil && *tt.f.account == 2 && len(live) != 0 {
				t.Errorf("account 2 client got live %v", live)
			}
			if (tt.f.account == nil || *tt.f.account == 1) && len(live) != 1 {
				t.Errorf("client got live %v, want one count", live)
			}
		})
	}
}

func TestSyncWithoutClickHouseSendsTheRing(t *testing.T) {
	hist := &fakeHistory{err: errors.New("connection refused")}
	h := newTestHub(t, hist)
	h.publish(win(1, 0, 1))
	s := subscribe(t, h, filter{}, 10)
	if got := s.drain(t); !reflect.DeepEqual(got, []Count{win(1, 0, 1)}) {
		t.Errorf("got %v", got)
	}
	if got := value(t, h.m.FeedHistoryErrors); got != 1 {
		t.Errorf("history errors = %v, want 1", got)
	}
}

func TestPublishDropsTheClientWhoseQueueIsFull(t *testing.T) {
	h := newTestHub(t, nil)
	slow, fast := newTestSub(2), newTestSub(100)
	for _, s := range []*testSub{slow, fast} {
		_ = h.add(s.subscriber)
		_ = h.sync(context.Background(), s.subscriber, filter{}, 0)
	}
	for i := range int64(10) {
		h.publish(win(1, i*10, 1))
		fast.drain(t) // keeps up
	}
	if got := slow.stopped; !reflect.DeepEqual(got, []int{closePolicy}) {
		t.Errorf("slow client stopped with %v, want [1008]", got)
	}
	if len(fast.stopped) != 0 {
		t.Errorf("fast client stopped with %v", fast.stopped)
	}
	if got := value(t, h.m.FeedDropped.WithLabelValues(reasonSlow)); got != 1 {
		t.Errorf("dropped slow = %v, want 1", got)
	}
	if h.clients() != 1 {
		t.Errorf("clients = %d, want 1", h.clients())
	}
}

func TestPendingOverflowDropsTheClient(t *testing.T) {
	hist := &fakeHistory{}
	h := newTestHub(t, hist)
	h.limits.pending = 3
	hist.onRecent = func() {
		for i := range int64(5) {
			h.publish(win(1, i*10, 1))
		}
	}
	s := newTestSub(16)
	_ = h.add(s.subscriber)
	if err := h.sync(context.Background(), s.subscriber, filter{}, 10); !errors.Is(err, errGone) {
		t.Fatalf("sync = %v, want errGone", err)
	}
	if !reflect.DeepEqual(s.stopped, []int{closePolicy}) {
		t.Errorf("stopped = %v", s.stopped)
	}
}

func TestShutdownClosesEveryClientGoingAwayAndRefusesNewOnes(t *testing.T) {
	h := newTestHub(t, nil)
	a, b := newTestSub(1), newTestSub(1)
	_ = h.add(a.subscriber)
	_ = h.add(b.subscriber)
	h.shutdown()
	for _, s := range []*testSub{a, b} {
		if !reflect.DeepEqual(s.stopped, []int{closeGoingAway}) {
			t.Errorf("stopped = %v, want [1001]", s.stopped)
		}
	}
	if err := h.reserve(); !errors.Is(err, errHubClosed) {
		t.Errorf("reserve after shutdown = %v", err)
	}
}

func TestReserveRefusesBeyondMaxClients(t *testing.T) {
	h := newTestHub(t, nil)
	h.limits.maxClients = 2
	for range 2 {
		if err := h.reserve(); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.reserve(); !errors.Is(err, errHubFull) {
		t.Fatalf("third reserve = %v, want errHubFull", err)
	}
	h.release()
	if err := h.reserve(); err != nil {
		t.Fatalf("reserve after release = %v", err)
	}
}

func TestHealthCheck(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		ok, bad time.Time
		wantErr string
	}{
		{"never read", time.Time{}, time.Time{}, "not read yet"},
		{"recent success", now.Add(-time.Second), time.Time{}, ""},
		{"success after failure", now.Add(-time.Second), now.Add(-2 * time.Second), ""},
		{"failure after success", now.Add(-2 * time.Second), now.Add(-time.Second), "last fetch failed"},
		{"stale success", now.Add(-time.Minute), time.Time{}, "no successful fetch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &health{lastOK: tt.ok, errAt: tt.bad}
			if !tt.bad.IsZero() {
				h.lastErr = errors.New("broker down")
			}
			err := h.check(now, 30*time.Second)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// value reads a counter or gauge.
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("metric %v is neither a counter nor a gauge", m.Desc())
	return 0
}
