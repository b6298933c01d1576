package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/status"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/wire"
)

// status runs `domination status` in this test's world, whatever it exits
// with.
func (e *env) status(args ...string) (result, status.Report) {
	e.t.Helper()
	full := append(e.args(), "status", "--shadow-dlq-topic", e.shadow+"-dlq", "--active-visitors-dlq-topic", e.active+"-dlq")
	full = append(full, args...)
	r := runEnv(e.t, 2*time.Minute, e.environ(), full...)
	var rep status.Report
	if strings.Contains(strings.Join(args, " "), "--format json") && r.code != 2 {
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			e.t.Fatalf("status --format json printed no report (exit %d): %v\nstdout: %s\nstderr: %s", r.code, err, r.stdout, r.stderr)
		}
	}
	return r, rep
}

// committedOffset is group's committed offset on one partition of topic.
func (e *env) committedOffset(group, topic string, partition int) int64 {
	e.t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...)}
	res, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {partition}}})
	if err != nil {
		e.t.Fatalf("committed offsets of %s: %v", group, err)
	}
	for _, p := range res.Topics[topic] {
		if p.Partition == partition {
			return p.CommittedOffset
		}
	}
	e.t.Fatalf("no committed offset of %s on %s/%d", group, topic, partition)
	return 0
}

func stageOf(t *testing.T, r status.Report, name string) status.Stage {
	t.Helper()
	for _, s := range r.Stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("the report has no stage %s: %+v", name, r)
	return status.Stage{}
}

func TestStatusIsZeroAfterADrainedRunAndNamesAStalledStoreUntilItRecovers(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	w := e.startWorker()

	const ratings = 2000
	e.cli("produce", "ratings", "--count", fmt.Sprint(ratings), "--seed", "11")
	e.cli("produce", "visits", "--account-id", "1", "--store-id", "uk", "--frequency", "100", "--max-messages", "100", "--seed", "11")
	testenv.WaitFor(t, "every rating in shadow", 90*time.Second, func() bool {
		return e.count("SELECT count() FROM shadow FINAL") == ratings
	})
	testenv.WaitFor(t, "windows in active_visitors", 90*time.Second, func() bool {
		return e.count("SELECT count() FROM active_visitors") > 0
	})

	// Drained: every stage at zero lag, exit 0.
	var r result
	var rep status.Report
	testenv.WaitFor(t, "status to show zero lag on every stage", 90*time.Second, func() bool {
		r, rep = e.status("--format", "json")
		for _, s := range rep.Stages {
			if s.Lag != 0 || len(s.Partitions) == 0 {
				return false
			}
		}
		return true
	})
	if r.code != 0 || rep.Stalled {
		t.Fatalf("status of a drained run exited %d, stalled=%v\nstderr: %s", r.code, rep.Stalled, r.stderr)
	}
	if s := stageOf(t, rep, "clickhouse:shadow"); s.Group != e.chGroup || s.Store == nil || s.Store.Rows < ratings || s.Store.FreshnessSeconds != 0 {
		t.Errorf("drained shadow stage: group %s (want %s), store %+v", s.Group, e.chGroup, s.Store)
	}
	// The worker refreshes on its own clock: its metrics follow.
	testenv.WaitFor(t, "domination_clickhouse_lag_records at 0 on the worker", 30*time.Second, func() bool {
		return w.metric(`domination_clickhouse_lag_records{`) == 0 && w.metric(`domination_clickhouse_store_rows{table="shadow"}`) >= ratings
	})
	testenv.WaitFor(t, "domination_ready 1", 30*time.Second, func() bool { return w.metric("domination_ready ") == 1 })
	if r, _ := e.status("--format", "table"); r.code != 0 || !strings.Contains(r.stdout, "no stage is stalled") {
		t.Errorf("status as a table exited %d:\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Stall the store: its view detached, the engine commits nothing while
	// valid shadow events wait.
	attach := e.detachShadowStore()
	ctx := context.Background()
	const waiting = 50
	msgs := make([]kafka.Message, waiting)
	now := time.Now().Unix()
	for i := range msgs {
		id := fmt.Sprintf("stalled-%d", i)
		msgs[i] = kafka.Message{Key: []byte(id), Value: wire.AppendShadow(nil, wire.Classify(3), []byte(id), now, 3)}
	}
	if err := e.writer(e.shadow).WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce shadow events: %v", err)
	}
	testenv.WaitFor(t, `domination_clickhouse_stalled{table="shadow"} 1`, 2*time.Minute, func() bool {
		return w.metric(`domination_clickhouse_stalled{table="shadow"}`) == 1
	})
	if got := w.metric(`domination_stage_stalled{stage="clickhouse:shadow"}`); got != 1 {
		t.Errorf(`domination_stage_stalled{stage="clickhouse:shadow"} = %v, want 1`, got)
	}
	if got := w.metric(`domination_clickhouse_lag_records{partition=`); got < waiting {
		t.Errorf("domination_clickhouse_lag_records sums to %v, want at least %d", got, waiting)
	}

	r, rep = e.status("--format", "json")
	if r.code != 1 || !rep.Stalled {
		t.Fatalf("status of a stalled store exited %d, stalled=%v\nstderr: %s", r.code, rep.Stalled, r.stderr)
	}
	s := stageOf(t, rep, "clickhouse:shadow")
	if s.Stall == nil {
		t.Fatalf("the stalled stage does not say where: %+v", s)
	}
	want := fmt.Sprintf("clickhouse:shadow (table shadow) stalled at partition %d offset %d", s.Stall.Partition, s.Stall.Offset)
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr does not name table, partition and offset (%q):\n%s", want, r.stderr)
	}
	if got := e.committedOffset(e.chGroup, e.shadow, s.Stall.Partition); got != s.Stall.Offset {
		t.Errorf("status says offset %d on partition %d; the engine's group has committed %d", s.Stall.Offset, s.Stall.Partition, got)
	}
	for _, other := range rep.Stages {
		if other.Name != s.Name && other.Stalled {
			t.Errorf("stage %s is stalled too: %s", other.Name, other.Describe())
		}
	}
	wr := runEnv(t, time.Minute, nil, "status", "--worker", w.url(""), "--format", "json")
	if wr.code != 1 || !strings.Contains(wr.stderr, "(table shadow) stalled at partition") {
		t.Errorf("status --worker exited %d:\n%s", wr.code, wr.stderr)
	}
	var fromWorker status.Report
	if err := json.Unmarshal([]byte(wr.stdout), &fromWorker); err != nil {
		t.Fatalf("status --worker printed no report: %v\n%s", err, wr.stdout)
	}
	guardDLQ := false
	for _, d := range fromWorker.DeadLetters {
		guardDLQ = guardDLQ || (d.Topic == e.shadow+"-dlq" && d.Exists)
	}
	if !guardDLQ || fromWorker.Ready == nil {
		t.Errorf("the worker's report lacks the guard's dead-letter topic %s or readiness: %+v %+v", e.shadow+"-dlq", fromWorker.DeadLetters, fromWorker.Ready)
	}
	if u := runEnv(t, time.Minute, nil, "status", "--format", "xml"); u.code != 2 {
		t.Errorf("status --format xml exited %d, want 2 (usage)", u.code)
	}
	if u := runEnv(t, time.Minute, nil, "status", "--no-such-flag"); u.code != 2 {
		t.Errorf("status --no-such-flag exited %d, want 2 (usage)", u.code)
	}

	// Recovery: the view back, the waiting events land, the stall clears.
	attach()
	testenv.WaitFor(t, "the waiting events in shadow", 90*time.Second, func() bool {
		return e.count("SELECT count() FROM shadow FINAL WHERE unique_id LIKE 'stalled-%'") == waiting
	})
	testenv.WaitFor(t, `domination_clickhouse_stalled{table="shadow"} 0 at zero lag`, time.Minute, func() bool {
		return w.metric(`domination_clickhouse_stalled{table="shadow"}`) == 0 && w.metric(`domination_clickhouse_lag_records{`) == 0
	})
	testenv.WaitFor(t, "status to exit 0 again", time.Minute, func() bool {
		r, _ := e.status()
		return r.code == 0
	})
}

func TestStatusFailsFastWhenKafkaOrClickHouseIsUnreachable(t *testing.T) {
	free := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ch := testenv.ClickHouseAddr(t)
	kafkaAddr := strings.Join(testenv.KafkaBrokers(t), ",")
	for _, c := range []struct {
		name, kafka, clickhouse, want string
	}{
		{"kafka", free, ch, "reach kafka at"},
		{"clickhouse", kafkaAddr, free, "connect to clickhouse at " + free},
	} {
		r := run(t, time.Minute, "--kafka-brokers", c.kafka, "--clickhouse-addr", c.clickhouse, "status", "--timeout", "5s")
		if r.code != 1 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%s unreachable: exit %d, stderr %q; want 1 and one line with %q", c.name, r.code, r.stderr, c.want)
		}
	}
}
