//go:build reliability

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/wire"
)

// rebalances sums the generations every agent of the workers has joined.
func rebalances(workers []*worker) float64 {
	var n float64
	for _, w := range workers {
		n += w.metric("domination_rebalances_total")
	}
	return n
}

// Scenario 11: the broker stops for 60 s, six times the drain timeout and
// the session timeout, and comes back. The workers keep their generation
// (no rebalance: every agent's generations joined are unchanged) and lose
// nothing: produce, commit and heartbeat failures are retried inside it.
func TestReliabilityKafkaStoppedFor60sEndsNoGenerationAndLosesNothing(t *testing.T) {
	k, e, workers := twoWorkersOnOwnKafka(t)
	committed := func() float64 { return shadowCommitted(workers) }
	// Three agents in each of two workers: every one has joined a
	// generation and holds it (a rebalance would have every member join
	// the next).
	testenv.WaitFor(t, "every agent of both workers in a generation", 2*time.Minute, func() bool { return rebalances(workers) >= 6 })
	const n = 100000
	acked := make(chan int, 1)
	go func() { acked <- e.steadyRatings(context.Background(), 20261211, n, 1500) }()
	testenv.WaitFor(t, "the workers to commit 15,000 ratings", 2*time.Minute, func() bool { return committed() >= 15000 })
	// The generations are settled once no join happened for two session
	// timeouts while ratings flowed.
	settled := rebalances(workers)
	testenv.WaitFor(t, "the workers to commit 10,000 more ratings", 2*time.Minute, func() bool { return committed() >= 25000 })
	if now := rebalances(workers); now != settled {
		t.Logf("generations still moving before the outage (%v, then %v)", settled, now)
		settled = now
	}

	stopKafkaFor(t, k, workers, 60*time.Second)
	e.everyRatingLanded(t, "kafka-outage-60s-no-rebalance", acked, n)
	if got := rebalances(workers); got != settled {
		t.Errorf("the agents joined %v generations in all after the outage, %v before: the outage caused a rebalance", got, settled)
	}
	for i, w := range workers {
		if logs := w.logs.String(); !strings.Contains(logs, "keeping the generation") {
			t.Errorf("worker %d logged no heartbeat retried during the outage", i)
		}
	}
}

// Scenario 12: visits stamped from seconds to days ahead, each followed by
// five on-time visits of the same key (the same repartition partition):
// every on-time visit is counted, the ones within the clock skew count in
// their own window, and the rest are dead-lettered with their reason.
func TestReliabilityVisitsStampedAheadLeaveOnTimeCountsUntouched(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	w := e.startWorker("--window", "2s", "--grace", "1s")
	// The agents start once the worker has created their topics.
	testenv.WaitFor(t, "both visit stages in a generation", 2*time.Minute, func() bool {
		return w.metric(`domination_rebalances_total{agent="visits"}`) >= 1 && w.metric(`domination_rebalances_total{agent="windows"}`) >= 1
	})
	sec := func(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000) }
	aheads := []struct {
		ahead  string
		reason wire.Reason // "" when counted
	}{
		{"2", ""}, {"10", ""}, {"25", ""},
		{"45", wire.ReasonFutureTimestamp}, {"300", wire.ReasonFutureTimestamp}, {"3000", wire.ReasonFutureTimestamp},
		{"172800", wire.ReasonBadTimestamp}, {"=1e20", wire.ReasonBadTimestamp},
	}
	want := map[string]int{}
	// Each visit is stamped as it is sent, ahead or now, so that a slow
	// machine cannot make an on-time visit old before it leaves.
	var msgs []func() kafka.Message
	for i, a := range aheads {
		account := 903 + i
		msgs = append(msgs, func() kafka.Message {
			ts := ""
			if raw, ok := strings.CutPrefix(a.ahead, "="); ok {
				ts = raw
			} else {
				d, _ := time.ParseDuration(a.ahead + "s")
				ts = sec(time.Now().Add(d))
			}
			return kafka.Message{Value: []byte(fmt.Sprintf(`{"id":"ahead-%d","account_id":%d,"store_id":"us","timestamp":%s}`, i, account, ts))}
		})
		for j := range 5 {
			msgs = append(msgs, func() kafka.Message {
				return kafka.Message{Value: []byte(fmt.Sprintf(`{"id":"on-time-%d-%d","account_id":%d,"store_id":"us","timestamp":%s}`, i, j, account, sec(time.Now())))}
			})
		}
		if a.reason != "" {
			want[string(a.reason)]++
		}
	}
	vw := e.writer(e.visits)
	for _, m := range msgs {
		// One at a time, in order: each on-time visit follows the one
		// stamped ahead on its key.
		if err := vw.WriteMessages(context.Background(), m()); err != nil {
			t.Fatalf("produce visits: %v", err)
		}
	}
	rep := e.reconcileVisits(2*time.Second, 2*time.Minute)
	printScenario(t, "future-timestamps", rep)
	if onTime := 5 * len(aheads); rep.Landed != onTime+3 {
		t.Errorf("counted %d visits, want the %d on-time ones and the 3 within the clock skew", rep.Landed, onTime)
	}
	checkReasons(t, rep.Reasons, want)
	checkDeadLetterMetrics(t, w, agents.VisitsAgentName, want)
	if late := w.metric(`domination_dead_lettered_total{agent="windows",reason="late"}`); late != 0 {
		t.Errorf("%v visits dead-lettered as late", late)
	}
}
