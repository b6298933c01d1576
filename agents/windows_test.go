package agents

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/stream"
	"github.com/domination/domination/metrics"
	"github.com/domination/domination/wire"
)

// windowName names the window of an emitted count, for comparing runs.
func windowName(e wire.ActiveVisitors) string {
	s := "null"
	if e.StoreID != nil {
		s = *e.StoreID
	}
	return fmt.Sprintf("%d/%s/%d-%d", e.AccountID, s, e.Start, e.End)
}

// visitLog makes a repartition partition's records: visits for a few keys,
// mostly in order, some out of order within the grace, some late, some
// stamped ahead of the time they were re-keyed (the record's timestamp),
// some ids repeated.
func visitLog(seed uint64, n int) []kafka.Message {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	stores := []*string{nil, ptr("uk"), ptr("us")}
	base := int64(1_700_000_000_000)
	now := base
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		now += rng.Int64N(400)
		ts := now
		switch r := rng.IntN(100); {
		case r < 10:
			ts -= rng.Int64N(4000) // out of order, within grace
		case r < 13:
			ts -= 20000 + rng.Int64N(10000) // late
		case r < 16:
			ts += rng.Int64N(25000) // ahead of the clock, within the skew
		}
		id := fmt.Sprintf("v%d", i)
		if rng.IntN(10) == 0 && i > 0 {
			id = fmt.Sprintf("v%d", i-1) // a repeated visit id
		}
		v := wire.Visit{ID: id, AccountID: int64(1 + rng.IntN(3)), StoreID: stores[rng.IntN(3)], Timestamp: float64(ts) / 1000}
		// Both forms, as during a rolling upgrade: the compact one the
		// visits agent writes, and the JSON one of a worker run with it.
		value := wire.AppendVisit(nil, v)
		if i%2 == 0 {
			value = wire.AppendRepartitioned(nil, wire.Repartitioned{ID: []byte(v.ID), AccountID: v.AccountID, StoreID: storeBytes(v.StoreID), Timestamp: v.Timestamp})
		}
		msgs[i] = kafka.Message{Topic: "rep", Offset: int64(i), Key: v.GroupKey(), Value: value, Time: time.UnixMilli(now)}
	}
	return msgs
}

func ptr(s string) *string { return &s }

func storeBytes(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

func testVisitsConfig() VisitsConfig {
	return VisitsConfig{Window: 10 * time.Second, Grace: 5 * time.Second}.WithDefaults()
}

func newTestWindower(p stream.Partition) *windower {
	m := metrics.New()
	return newWindower(testVisitsConfig(), p, deadCounters(m, "windows", VisitReasons), m.OpenWindows.WithLabelValues("windows"), slog.New(slog.DiscardHandler))
}

// drive processes msgs in batches of size batch, returning the counts and
// late offsets emitted, and the commits made after each batch.
func drive(w *windower, msgs []kafka.Message, batch int) (counts []wire.ActiveVisitors, late []int64, commits []stream.Partition) {
	var out stream.Output
	for i := 0; i < len(msgs); i += batch {
		end := min(i+batch, len(msgs))
		for j := i; j < end; j++ {
			w.Process(&msgs[j], &out)
		}
		for _, m := range outputMessages(&out) {
			if wire.HeaderValue(m.Headers, wire.HeaderReason) == string(wire.ReasonLate) {
				// Dead-lettered as a visit of the visits topic, in JSON,
				// whichever form it came in.
				if _, err := wire.DecodeVisit(m.Value, time.Time{}, wire.VisitLimits{}); err != nil {
					panic(fmt.Sprintf("a late visit was dead-lettered as %q: %v", m.Value, err))
				}
				var off int64
				fmt.Sscan(wire.HeaderValue(m.Headers, wire.HeaderOffset), &off)
				late = append(late, off)
				continue
			}
			e, err := wire.DecodeActiveVisitors(m.Value)
			if err != nil {
				panic(err)
			}
			counts = append(counts, e)
		}
		off, meta := w.Commit(msgs[end-1].Offset + 1)
		commits = append(commits, stream.Partition{Topic: "rep", Offset: off, Metadata: meta})
	}
	return counts, late, commits
}

func TestWindowsRebuiltAfterACrashEmitTheSameCountsAsAnUninterruptedRun(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		msgs := visitLog(seed, 3000)
		want, wantLate, _ := drive(newTestWindower(stream.Partition{}), msgs, 64)
		wantByKey := map[string]int{}
		for _, e := range want {
			wantByKey[windowName(e)] = int(e.Count)
		}
		if len(wantByKey) != len(want) {
			t.Fatalf("seed %d: an uninterrupted run emitted a window twice", seed)
		}
		lateSet := map[int64]bool{}
		for _, o := range wantLate {
			lateSet[o] = true
		}

		rng := rand.New(rand.NewPCG(seed, 7))
		crashAt := 100 + rng.IntN(2800) // records processed before the crash
		committedBatches := rng.IntN(3) // the last batches' commits were lost
		first, firstLate, commits := drive(newTestWindower(stream.Partition{}), msgs[:crashAt], 64)
		resume := stream.Partition{Topic: "rep"}
		if k := len(commits) - 1 - committedBatches; k >= 0 {
			resume = commits[k]
		}
		second, secondLate, _ := drive(newTestWindower(resume), msgs[resume.Offset:], 64)

		got := map[string]int{}
		for _, e := range append(first, second...) {
			if c, ok := got[windowName(e)]; ok && c != int(e.Count) {
				t.Fatalf("seed %d: window %s emitted with counts %d and %d", seed, windowName(e), c, e.Count)
			}
			got[windowName(e)] = int(e.Count)
		}
		if len(got) != len(wantByKey) {
			t.Fatalf("seed %d (crash after %d, resume at %d): %d windows emitted, want %d", seed, crashAt, resume.Offset, len(got), len(wantByKey))
		}
		for k, c := range wantByKey {
			if got[k] != c {
				t.Fatalf("seed %d (crash after %d, resume at %d): window %s counted %d, want %d", seed, crashAt, resume.Offset, k, got[k], c)
			}
		}
		gotLate := map[int64]bool{}
		for _, o := range append(firstLate, secondLate...) {
			if !lateSet[o] {
				t.Fatalf("seed %d: offset %d dead-lettered as late after the crash but not without it", seed, o)
			}
			gotLate[o] = true
		}
		if len(gotLate) != len(lateSet) {
			t.Fatalf("seed %d: %d late visits dead-lettered, want %d", seed, len(gotLate), len(lateSet))
		}
	}
}

func TestWindowsCountDistinctIdsAndDeadLetterLateVisits(t *testing.T) {
	w := newTestWindower(stream.Partition{})
	base := int64(1_700_000_000) // a multiple of 10
	mk := func(off int64, id string, ts float64) kafka.Message {
		v := wire.Visit{ID: id, AccountID: 1, StoreID: ptr("uk"), Timestamp: ts}
		return kafka.Message{Offset: off, Value: wire.AppendVisit(nil, v)}
	}
	msgs := []kafka.Message{
		mk(0, "a", float64(base)+1), mk(1, "a", float64(base)+2), mk(2, "b", float64(base)+9.999),
		mk(3, "c", float64(base)+12), // next window; watermark 12s: window 0 open until 15s
		mk(4, "d", float64(base)+8),  // still within grace
		mk(5, "e", float64(base)+16), // closes window 0 with a, b, d
		mk(6, "f", float64(base)+3),  // late
	}
	counts, late, _ := drive(w, msgs, 100)
	if len(counts) != 1 || counts[0].Count != 3 || counts[0].Start != base || counts[0].End != base+10 {
		t.Fatalf("emitted %+v, want one window [%d, %d) counting 3", counts, base, base+10)
	}
	if len(late) != 1 || late[0] != 6 {
		t.Fatalf("late offsets %v, want [6]", late)
	}
	var out stream.Output
	w.Tick(time.Unix(base+100, 0), &out)
	if n := len(outputMessages(&out)); n != 1 {
		t.Fatalf("an idle tick emitted %d windows, want the 1 still open", n)
	}
}

func outputMessages(o *stream.Output) []kafka.Message {
	msgs := append([]kafka.Message(nil), o.Messages()...)
	*o = stream.Output{}
	return msgs
}

func TestWindowerDeadLettersABadRepartitionedVisitWithItsReason(t *testing.T) {
	w := newTestWindower(stream.Partition{})
	var out stream.Output
	w.Process(&kafka.Message{Offset: 0, Value: []byte(`{"id":"a","id":"b","account_id":1,"store_id":null,"timestamp":1700000000}`)}, &out)
	w.Process(&kafka.Message{Offset: 1, Value: []byte(`{"id":"a","account_id":1,"store_id":null}`)}, &out)
	msgs := outputMessages(&out)
	if len(msgs) != 2 {
		t.Fatalf("windower emitted %d records, want 2 dead letters", len(msgs))
	}
	for i, want := range []wire.Reason{wire.ReasonMalformedJSON, wire.ReasonMissingField} {
		if got := wire.HeaderValue(msgs[i].Headers, wire.HeaderReason); got != string(want) || !strings.HasPrefix(wire.HeaderValue(msgs[i].Headers, wire.HeaderDetail), "repartitioned visit: ") {
			t.Errorf("dead letter %d: reason %s, detail %q; want %s and a detail naming the repartitioned visit", i, got, wire.HeaderValue(msgs[i].Headers, wire.HeaderDetail), want)
		}
	}
}

func TestWindowerCountsOneStoreAsOneKeyWhateverItsBuffer(t *testing.T) {
	w := newTestWindower(stream.Partition{})
	var out stream.Output
	for i := range 3 {
		// A new buffer per record: the interned store must not alias one.
		v := wire.Visit{ID: fmt.Sprint("v", i), AccountID: 1, StoreID: ptr("uk"), Timestamp: 1700000000 + float64(i)}
		w.Process(&kafka.Message{Offset: int64(i), Value: wire.AppendVisit(nil, v)}, &out)
	}
	v := wire.Visit{ID: "v9", AccountID: 1, StoreID: ptr("us"), Timestamp: 1700000100}
	w.Process(&kafka.Message{Offset: 3, Value: wire.AppendVisit(nil, v)}, &out)
	var got []string
	for _, m := range outputMessages(&out) {
		got = append(got, string(m.Key)+" "+string(m.Value))
	}
	want := []string{`1:"uk" {"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":3}`}
	if !slices.Equal(got, want) {
		t.Errorf("windower emitted %q, want %q", got, want)
	}
}

// BenchmarkWindowerProcess counts distinct visits over 250 keys (one
// repartition partition's share of 1,000), 10,000 visits per second of
// event time, in runs of 65,536 visits, each with a fresh windower.
func BenchmarkWindowerProcess(b *testing.B) {
	cfg := VisitsConfig{}.WithDefaults()
	m := metrics.New()
	fresh := func() *windower {
		return newWindower(cfg, stream.Partition{}, deadCounters(m, WindowsAgentName, VisitReasons), m.OpenWindows.WithLabelValues(WindowsAgentName), slog.New(slog.DiscardHandler))
	}
	const n = 1 << 16
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		v := wire.Visit{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), AccountID: int64(i % 25), Timestamp: 1700000000 + float64(i)/10000}
		if s := i % 10; s > 0 {
			v.StoreID = ptr(fmt.Sprint("s", s))
		}
		msgs[i] = kafka.Message{Value: wire.AppendVisit(nil, v), Time: visitRecorded.Add(time.Hour)}
	}
	w := fresh()
	var out stream.Output
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := i % n
		if j == 0 && i > 0 {
			w = fresh() // event time restarts with the same visits
		}
		msg := msgs[j]
		msg.Offset = int64(i)
		w.Process(&msg, &out)
		if out.Len() > 4096 {
			out = stream.Output{}
		}
	}
}
