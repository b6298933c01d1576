//go:build reliability

package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/testenv"
)

// Scenario 1: workers killed with SIGKILL at random points, ten times,
// while 200,000 ratings arrive over about a minute.
func TestReliabilityTenSIGKILLsDuringA200kRunLoseAndDuplicateNothing(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	r := rng(t)
	flags := []string{"--max-batch", "1000"}
	workers := []*worker{e.startWorker(flags...), e.startWorker(flags...)}
	wait := e.produceRatingsAsync(20261201, 200000, 3400)
	for kill := 1; kill <= 10; kill++ {
		time.Sleep(time.Duration(2500+r.IntN(3500)) * time.Millisecond)
		// A random worker among those consuming, so that the kill lands
		// mid-batch; any worker while the group is still rebalancing.
		var owners []int
		for j, w := range workers {
			if w.metric(`domination_partitions_owned{agent="shadow"}`) > 0 {
				owners = append(owners, j)
			}
		}
		i := r.IntN(len(workers))
		if len(owners) > 0 {
			i = owners[r.IntN(len(owners))]
		}
		committed := workers[i].metric(`domination_committed_total{agent="shadow"}`)
		if err := workers[i].stop(syscall.SIGKILL); err == nil {
			t.Fatalf("kill %d: SIGKILL did not end the worker with an error status", kill)
		}
		t.Logf("kill %d: worker %d SIGKILLed after committing %.0f ratings", kill, i, committed)
		workers[i] = e.startWorker(flags...)
	}
	wait()
	rep := e.reconcileRatings(4 * time.Minute)
	printScenario(t, "sigkill-x10", rep)
	if rep.Produced != 200000 || rep.Landed != 200000 {
		t.Errorf("produced %d, landed %d: want all 200000 landed", rep.Produced, rep.Landed)
	}
}

// Scenario 2: a rebalance storm. Three workers; every few seconds one is
// stopped (SIGTERM) or one started, between one and three running.
func TestReliabilityRebalanceStormLosesAndDuplicatesNothing(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	r := rng(t)
	flags := []string{"--max-batch", "500", "--shutdown-timeout", "20s"}
	running := []*worker{e.startWorker(flags...), e.startWorker(flags...), e.startWorker(flags...)}
	wait := e.produceRatingsAsync(20261202, 120000, 2000)
	stops, starts := 0, 0
	for end := time.Now().Add(55 * time.Second); time.Now().Before(end); {
		time.Sleep(time.Duration(2000+r.IntN(2500)) * time.Millisecond)
		stop := len(running) == 3 || (len(running) > 1 && r.IntN(2) == 0)
		if stop {
			i := r.IntN(len(running))
			if err := running[i].stop(syscall.SIGTERM); err != nil {
				t.Fatalf("a worker stopped with SIGTERM exited with %v\n%s", err, running[i].logs.String())
			}
			running = append(running[:i], running[i+1:]...)
			stops++
		} else {
			running = append(running, e.startWorker(flags...))
			starts++
		}
	}
	t.Logf("%d stops and %d starts; %d workers running at the end", stops, starts, len(running))
	wait()
	rep := e.reconcileRatings(4 * time.Minute)
	printScenario(t, "rebalance-storm", rep)
	if rep.Landed != 120000 {
		t.Errorf("landed %d, want 120000", rep.Landed)
	}
}

// Scenario 7: SIGTERM during a run drains and commits within the shutdown
// deadline, and a restart re-processes at most one batch per partition.
func TestReliabilitySIGTERMDrainsAndCommitsSoARestartReprocessesAtMostOneBatch(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	const batch, deadline = 500, 10 * time.Second
	flags := []string{"--max-batch", "500", "--shutdown-timeout", deadline.String()}
	w := e.startWorker(flags...)
	wait := e.produceRatingsAsync(20261207, 60000, 5000)
	testenv.WaitFor(t, "the worker to commit 15,000 ratings", time.Minute, func() bool {
		return w.metric(`domination_committed_total{agent="shadow"}`) >= 15000
	})
	start := time.Now()
	if err := w.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("the worker did not exit cleanly after SIGTERM: %v\n%s", err, w.logs.String())
	}
	took := time.Since(start)
	if took > deadline {
		t.Errorf("the worker took %s to stop, over its %s shutdown deadline", took, deadline)
	}
	if !strings.Contains(w.logs.String(), "stopped cleanly") {
		t.Errorf("the worker log does not say it stopped cleanly")
	}

	// What the stopped worker produced beyond what it committed is what a
	// restart processes again: every valid rating yields one shadow record.
	committed := e.committedOffsets(e.group, e.ratings)
	var sum int64
	for _, o := range committed {
		sum += max(o, 0)
	}
	outputs := int64(len(e.readUpTo(e.shadow)))
	again := outputs - sum
	t.Logf("stopped in %s; committed %d ratings, produced %d shadow records: a restart re-processes %d", took.Round(time.Millisecond), sum, outputs, again)
	if again < 0 || again > int64(batch*len(committed)) {
		t.Errorf("a restart re-processes %d ratings, want at most one batch per partition (%d)", again, batch*len(committed))
	}

	e.startWorker(flags...)
	wait()
	rep := e.reconcileRatings(3 * time.Minute)
	printScenario(t, "graceful-sigterm", rep)
	if rep.Landed != 60000 {
		t.Errorf("landed %d, want 60000", rep.Landed)
	}
}

// committedOffsets returns the group's committed offset per partition of
// topic (-1 for none).
func (e *env) committedOffsets(group, topic string) map[int]int64 {
	e.t.Helper()
	parts, err := e.partitions(topic)
	if err != nil {
		e.t.Fatalf("partitions of %s: %v", topic, err)
	}
	ids := make([]int, len(parts))
	for i, p := range parts {
		ids[i] = p.ID
	}
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...)}
	res, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		e.t.Fatalf("committed offsets of %s: %v", group, err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}
