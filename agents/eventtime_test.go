package agents

// Tests of the event-time rules of the package doc.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/stream"
	"github.com/domination/domination/metrics"
	"github.com/domination/domination/wire"
)

// pipeline runs visits through a repartitioner and one windower, the way a
// worker does, with a wall clock the test sets.
type pipeline struct {
	now      time.Time
	rep      *repartitioner
	win      *windower
	offset   int64
	counts   map[string]int // window key -> count emitted
	dead     []kafka.Message
	open     *metrics.Metrics
	maxWater int64 // the largest watermark seen, unix ms
}

func newPipeline(now time.Time) *pipeline {
	cfg := testVisitsConfig()
	m := metrics.New()
	p := &pipeline{now: now, counts: map[string]int{}, open: m}
	p.rep = &repartitioner{cfg: cfg, dead: deadCounters(m, VisitsAgentName, VisitReasons), clock: wallClock{now: func() time.Time { return p.now }}}
	p.win = newWindower(cfg, stream.Partition{}, deadCounters(m, WindowsAgentName, VisitReasons), m.OpenWindows.WithLabelValues(WindowsAgentName), slog.New(slog.DiscardHandler))
	return p
}

// send hands the visits agent one visit, recorded by Kafka at the wall
// clock, and the windows agent what it re-keys.
func (p *pipeline) send(value string) {
	var out stream.Output
	p.rep.Process(&kafka.Message{Topic: "visits", Value: []byte(value), Time: p.now}, &out)
	for _, m := range outputMessages(&out) {
		if m.Topic != p.rep.cfg.RepartitionTopic {
			p.dead = append(p.dead, m)
			continue
		}
		m.Offset = p.offset
		p.offset++
		var wout stream.Output
		p.win.Process(&m, &wout)
		p.collect(&wout)
	}
	p.maxWater = max(p.maxWater, p.win.watermark)
}

func (p *pipeline) tick(at time.Time) {
	var out stream.Output
	p.win.Tick(at, &out)
	p.collect(&out)
}

func (p *pipeline) collect(out *stream.Output) {
	for _, m := range outputMessages(out) {
		if m.Topic == p.win.cfg.DeadLetterTopic {
			p.dead = append(p.dead, m)
			continue
		}
		e, err := wire.DecodeActiveVisitors(m.Value)
		if err != nil {
			panic(err)
		}
		p.counts[windowName(e)] += int(e.Count)
	}
}

func visitJSON(id string, account int64, store string, ts float64) string {
	return fmt.Sprintf(`{"id":%q,"account_id":%d,"store_id":%q,"timestamp":%s}`, id, account, store, fmt.Sprint(ts))
}

func TestVisitsStampedFromSecondsToDaysAheadLeaveOnTimeCountsUntouched(t *testing.T) {
	base := time.Unix(1_800_000_000, 0) // a window boundary (10s windows)
	now := base.Add(3 * time.Second)
	for _, tc := range []struct {
		name   string
		ahead  string      // seconds ahead of now, or a raw timestamp when it starts with "="
		reason wire.Reason // "" when the visit is counted in its own window
	}{
		{"half a second ahead", "0.5", ""},
		{"3 seconds ahead", "3", ""},
		{"29 seconds ahead", "29", ""},
		{"31 seconds ahead", "31", wire.ReasonFutureTimestamp},
		{"5 minutes ahead", "300", wire.ReasonFutureTimestamp},
		{"50 minutes ahead (the reported case)", "3000", wire.ReasonFutureTimestamp},
		{"61 minutes ahead", "3660", wire.ReasonBadTimestamp},
		{"2 days ahead", "172800", wire.ReasonBadTimestamp},
		{"stamped 1e20", "=1e20", wire.ReasonBadTimestamp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(now)
			nowSec := float64(now.UnixMilli()) / 1000
			var ts float64
			if raw, ok := strings.CutPrefix(tc.ahead, "="); ok {
				fmt.Sscan(raw, &ts)
			} else {
				var ahead float64
				fmt.Sscan(tc.ahead, &ahead)
				ts = nowSec + ahead
			}
			p.send(visitJSON("ahead", 903, "us", ts))
			for i := range 5 {
				p.send(visitJSON(fmt.Sprintf("on-time-%d", i), 903, "us", nowSec-float64(i)/10))
				p.send(visitJSON(fmt.Sprintf("other-%d", i), 904, "uk", nowSec))
			}
			if p.maxWater > now.UnixMilli() {
				t.Fatalf("the watermark reached %s, ahead of the wall clock %s", time.UnixMilli(p.maxWater).UTC(), now.UTC())
			}
			// The wall clock moves on and every window closes.
			p.tick(now.Add(2 * time.Minute))

			key := func(account int64, store string, start time.Time) string {
				return windowName(wire.ActiveVisitors{AccountID: account, StoreID: &store, Start: start.Unix(), End: start.Unix() + 10})
			}
			aheadStart := time.UnixMilli(floorDiv(int64(ts*1000), 10_000) * 10_000)
			want := 5
			if tc.reason == "" && aheadStart.Equal(base) {
				want++ // the visit stamped ahead falls in the same window
			}
			if got := p.counts[key(903, "us", base)]; got != want {
				t.Errorf("the on-time window of 903/us counted %d, want %d", got, want)
			}
			if got := p.counts[key(904, "uk", base)]; got != 5 {
				t.Errorf("the on-time window of 904/uk counted %d, want 5", got)
			}
			var reasons []string
			for _, d := range p.dead {
				reasons = append(reasons, wire.HeaderValue(d.Headers, wire.HeaderReason)+": "+wire.HeaderValue(d.Headers, wire.HeaderDetail))
			}
			switch {
			case tc.reason == "" && len(p.dead) != 0:
				t.Errorf("dead-lettered %v, want nothing", reasons)
			case tc.reason == "":
				if got := p.counts[key(903, "us", aheadStart)]; aheadStart != base && got != 1 {
					t.Errorf("the visit stamped ahead counted %d in its window, want 1", got)
				}
			case len(p.dead) != 1 || wire.HeaderValue(p.dead[0].Headers, wire.HeaderReason) != string(tc.reason):
				t.Errorf("dead-lettered %v, want the one visit stamped ahead, as %s", reasons, tc.reason)
			case strings.Contains(reasons[0], "-292275055"):
				t.Errorf("the detail overflowed: %s", reasons[0])
			}
		})
	}
}

func TestARatingStampedBeyondTheClockSkewIsDeadLetteredAsFuture(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		at   time.Time
		want wire.Reason
	}{
		{now, ""},
		{now.Add(29 * time.Second), ""},
		{now.Add(31 * time.Second), wire.ReasonFutureTimestamp},
		{now.Add(50 * time.Minute), wire.ReasonFutureTimestamp},
		{time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), wire.ReasonBadTimestamp},
	} {
		p := newTestShadowProcessor()
		p.clock.now = func() time.Time { return now }
		var out stream.Output
		p.Process(&kafka.Message{Topic: "dominate", Value: []byte(`{"rating":15,"unique_id":"r"}`), Time: tc.at}, &out)
		m := only(t, &out)
		got := wire.Reason(wire.HeaderValue(m.Headers, wire.HeaderReason))
		if got != tc.want || (tc.want == "" && m.Topic != p.cfg.OutputTopic) {
			t.Errorf("a rating recorded at %s: reason %q on %s, want %q", tc.at.UTC(), got, m.Topic, tc.want)
		}
	}
}

// The agents judge records on the batch's reading of the clock, and a
// record that looks ahead of that older reading on a fresh one: the
// verdict is the clock's. An injected clock is the only reading.
func TestTheWallClockJudgesOnTheBatchsReadingWithoutChangingAVerdict(t *testing.T) {
	const skew = 30 * time.Second
	var c wallClock
	old := time.Now().Add(-10 * time.Minute)
	out := stream.OutputAt(old)
	if got := c.reading(out); !got.Equal(old) {
		t.Errorf("stamped %v, want the batch's reading %v", got, old)
	}
	if de := c.ahead("r", float64(time.Now().Unix()), out, skew); de != nil {
		t.Errorf("a record stamped now was judged on the batch's old reading: %v", de)
	}
	if de := c.ahead("r", float64(time.Now().Add(time.Minute).Unix()), out, skew); de == nil {
		t.Error("a record a minute ahead of the clock passed")
	}
	fixed := time.Unix(1_800_000_000, 0)
	c = wallClock{now: func() time.Time { return fixed }}
	if got := c.reading(out); !got.Equal(fixed) {
		t.Errorf("stamped %v with a clock injected at %v", got, fixed)
	}
	if de := c.ahead("r", float64(fixed.Add(31*time.Second).Unix()), out, skew); de == nil {
		t.Error("a record 31 s ahead of the injected clock passed")
	}
	if de := c.ahead("r", float64(fixed.Add(29*time.Second).Unix()), out, skew); de != nil {
		t.Errorf("a record 29 s ahead of the injected clock was refused: %v", de)
	}
}

func TestAClosedWindowerReleasesItsOpenIDs(t *testing.T) {
	m := metrics.New()
	gauge := m.OpenWindows.WithLabelValues(WindowsAgentName)
	w := newWindower(testVisitsConfig(), stream.Partition{}, deadCounters(m, WindowsAgentName, VisitReasons), gauge, slog.New(slog.DiscardHandler))
	var out stream.Output
	for i := range 3 {
		v := wire.Visit{ID: fmt.Sprint(i), AccountID: 1, Timestamp: 1_800_000_000}
		w.Process(&kafka.Message{Offset: int64(i), Value: wire.AppendVisit(nil, v)}, &out)
	}
	value := func() float64 {
		var d dto.Metric
		_ = gauge.Write(&d)
		return d.GetGauge().GetValue()
	}
	if got := value(); got != 3 {
		t.Fatalf("open ids %v after 3 visits, want 3", got)
	}
	w.Close()
	if got := value(); got != 0 {
		t.Fatalf("open ids %v after the windower closed, want 0", got)
	}
}

func TestAFailingStageStopsTheOtherStage(t *testing.T) {
	boom := errors.New("stage failed")
	stopped := make(chan struct{})
	err := runStages(context.Background(),
		func(context.Context) error { return boom },
		func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil },
	)
	if !errors.Is(err, boom) {
		t.Fatalf("runStages returned %v, want the failing stage's error", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the other stage was not stopped")
	}
}

func TestTheOldestAcceptedTimestampIsTheStartOfTheWindowHoldingWatermarkMinusGrace(t *testing.T) {
	// 10s windows, 5s grace: at watermark base+27s, w - Grace = base+22s
	// lies in [base+20, base+30), so base+20 is accepted and base+19.999 late.
	base := int64(1_800_000_000)
	for _, tc := range []struct {
		ts   float64
		late bool
	}{
		{float64(base) + 20, false},
		{float64(base) + 25, false},
		{float64(base) + 19.999, true},
		{float64(base) + 10, true},
	} {
		w := newTestWindower(stream.Partition{})
		var out stream.Output
		lead := wire.Visit{ID: "lead", AccountID: 1, Timestamp: float64(base) + 27}
		w.Process(&kafka.Message{Offset: 0, Value: wire.AppendVisit(nil, lead)}, &out)
		v := wire.Visit{ID: "v", AccountID: 2, Timestamp: tc.ts}
		w.Process(&kafka.Message{Offset: 1, Value: wire.AppendVisit(nil, v)}, &out)
		late := false
		for _, m := range outputMessages(&out) {
			late = late || wire.HeaderValue(m.Headers, wire.HeaderReason) == string(wire.ReasonLate)
		}
		if late != tc.late {
			t.Errorf("a visit at %.3f with the watermark at %d: late %v, want %v", tc.ts, base+27, late, tc.late)
		}
	}
}
