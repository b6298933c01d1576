package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/internal/dlq"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/internal/verify"
	"github.com/domination/domination/producer"
	"github.com/domination/domination/wire"
)

// replayOutcome is what the dead-letter replay scenario measured.
type replayOutcome struct {
	// produced counts the ratings sent; replayed the dead letters each
	// replay had acknowledged.
	produced, replayed int
	// report reconciles the produced ratings (not their replayed copies)
	// with shadow FINAL after both replays.
	report verify.Report
}

// line is the scenario's line in the reliability report's format.
func (o replayOutcome) line() string {
	return fmt.Sprintf("scenario=dlq-replay produced=%d replayed=%d landed=%d missing=%d duplicated=%d",
		o.produced, o.replayed, o.report.Landed, o.report.Missing, o.report.Duplicated)
}

const replaySeed = 20261201

// dlqReplayScenario sends n seeded ratings (1..100) to a worker that
// accepts 1..50 only, so about half are dead-lettered as out_of_range;
// widens the range by restarting the worker with the default one; replays
// the dead letters with `domination dlq replay`, twice; and reconciles.
// With crash, the worker is SIGKILLed right after the first replay is
// acknowledged, and another takes over. It fails t on any step that goes
// wrong, and returns the figures.
func (e *env) dlqReplayScenario(n int, crash bool) replayOutcome {
	t := e.t
	t.Helper()
	e.migrateUp()
	w := e.startWorker("--max-rating", "50")
	if out := e.cli("produce", "ratings", "--count", strconv.Itoa(n), "--seed", strconv.Itoa(replaySeed)).stdout; !strings.Contains(out, fmt.Sprintf("acknowledged %d of %d", n, n)) {
		t.Fatalf("produce printed %q", out)
	}
	narrow := 0
	s := producer.NewRatingStream(replaySeed, 1, 100)
	for range n {
		if r, _ := s.Next(); r > 50 {
			narrow++
		}
	}
	if narrow == 0 || narrow == n {
		t.Fatalf("the seeded stream has %d of %d ratings above 50: the scenario needs some of each", narrow, n)
	}

	// Dead-lettered for their range: dlq list sees them by reason. A dead
	// letter is written at least once, so there may be more than narrow.
	testenv.WaitFor(t, "the ratings above 50 in the dead-letter topic", 2*time.Minute, func() bool {
		return e.dlqReasons()["out_of_range"] >= narrow
	})
	reasons := e.dlqReasons()
	if len(reasons) != 1 {
		t.Fatalf("dlq list --by reason: %v, want out_of_range only", reasons)
	}
	dead := reasons["out_of_range"]
	e.checkShow()

	// A dry run sends nothing.
	dry := e.cli("dlq", "replay", "--reason", "out_of_range", "--dry-run").stdout
	if want := fmt.Sprintf("selected=%d sent=0 acknowledged=0 skipped=0 to=%s:%d dry_run=true", dead, e.ratings, dead); !strings.Contains(dry, want) {
		t.Fatalf("dry run printed\n%s\nwant %q", dry, want)
	}
	if got := len(e.readUpTo(e.ratings)); got != n {
		t.Fatalf("the ratings topic holds %d records after a dry run, want %d", got, n)
	}

	// Widen the range: restart the worker with the default, 1..100.
	if err := w.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop the worker: %v", err)
	}
	w = e.startWorker()

	src := e.source()
	replayed := 0
	for round := 1; round <= 2; round++ {
		out := e.cli("dlq", "replay", "--reason", "out_of_range").stdout
		want := fmt.Sprintf("selected=%d sent=%d acknowledged=%d skipped=0 to=%s:%d", dead, dead, dead, e.ratings, dead)
		if !strings.Contains(out, want) {
			t.Fatalf("replay %d printed %q, want %q", round, out, want)
		}
		replayed = dead
		if crash && round == 1 {
			if err := w.stop(syscall.SIGKILL); err == nil {
				t.Fatal("SIGKILL did not end the worker with an error status")
			}
			e.startWorker()
		}
		// Every record the replay sent is classified, and its shadow event
		// stored: the worker's group and ClickHouse's are at the ends of
		// their topics.
		testenv.WaitFor(t, fmt.Sprintf("replay %d to be consumed into ClickHouse", round), 2*time.Minute, func() bool {
			return e.caughtUp(e.group, e.ratings) && e.caughtUp(e.chGroup, e.shadow)
		})
		if got := e.queryCounts(); !equalCounts(got, expectedCounts(replaySeed, n)) {
			t.Fatalf("after replay %d, query shadow reports %v, want %v", round, got, expectedCounts(replaySeed, n))
		}
	}
	// Each replay produced a shadow event per record: the topic holds
	// them all, and ClickHouse counted each rating once.
	if got := len(e.readUpTo(e.shadow)); got < n+narrow {
		t.Fatalf("the shadow topic holds %d events, want at least %d (every rating, and the replayed ones twice)", got, n+narrow)
	}
	if got := len(e.readUpTo(e.ratings)); got != n+2*dead {
		t.Fatalf("the ratings topic holds %d records, want %d (the ratings and two replays)", got, n+2*dead)
	}
	rep := e.reconcileProduced(src)
	t.Logf("shadow stores %d rows before de-duplication", e.count("SELECT count() FROM shadow"))
	if !rep.OK() || rep.Landed != n || rep.Unexpected != 0 {
		t.Errorf("reconciliation after two replays: %s", rep)
	}
	if rows, ids := e.count("SELECT count() FROM shadow FINAL"), e.count("SELECT uniqExact(unique_id) FROM shadow FINAL"); rows != ids {
		t.Errorf("shadow FINAL holds %d rows for %d unique_ids", rows, ids)
	}
	return replayOutcome{produced: n, replayed: replayed, report: rep}
}

// dlqReasons runs `dlq list --by reason --format json` and returns the
// records per reason.
func (e *env) dlqReasons() map[string]int {
	e.t.Helper()
	out := e.cli("dlq", "list", "--by", "reason", "--format", "json").stdout
	var rows []struct {
		Reason  string `json:"reason"`
		Records int    `json:"records"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		e.t.Fatalf("dlq list printed %q: %v", out, err)
	}
	got := map[string]int{}
	for _, r := range rows {
		got[r.Reason] = r.Records
	}
	return got
}

// checkShow lists the first dead letter and shows it, as text and JSON.
func (e *env) checkShow() {
	t := e.t
	t.Helper()
	out := e.cli("dlq", "list", "--reason", "out_of_range", "--limit", "1", "--format", "json").stdout
	var rows []struct {
		Partition int    `json:"partition"`
		Offset    int64  `json:"offset"`
		Origin    string `json:"origin"`
		Detail    string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("dlq list --limit 1 printed %q (%v)", out, err)
	}
	first := rows[0]
	if !strings.HasPrefix(first.Origin, e.ratings+"/") || !strings.Contains(first.Detail, "outside 1..50") {
		t.Errorf("listed %+v, want an origin in %s and the range in the detail", first, e.ratings)
	}
	at := fmt.Sprintf("%d/%d", first.Partition, first.Offset)
	text := e.cli("dlq", "show", "--offset", at).stdout
	for _, want := range []string{"dead letter  " + e.dlq + "/" + at, "reason       out_of_range", "origin       " + first.Origin, "  " + wire.HeaderTimestamp + ": ", `"unique_id"`} {
		if !strings.Contains(text, want) {
			t.Errorf("dlq show %s does not print %q:\n%s", at, want, text)
		}
	}
	var shown struct {
		Reason   string  `json:"reason"`
		Value    *string `json:"value"`
		ValueHex string  `json:"value_hex"`
	}
	js := e.cli("dlq", "show", "--offset", at, "--format", "json").stdout
	if err := json.Unmarshal([]byte(js), &shown); err != nil || shown.Reason != "out_of_range" || shown.Value == nil || shown.ValueHex == "" {
		t.Errorf("dlq show --format json printed %q (%v)", js, err)
	}
}

// caughtUp reports whether group has committed, on every partition of
// topic, the partition's end offset.
func (e *env) caughtUp(group, topic string) bool {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Transport: &kafka.Transport{MetadataTTL: time.Second}}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		e.t.Fatalf("describe %s: %v", topic, err)
	}
	var parts []int
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		parts = append(parts, p.ID)
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	ends, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		e.t.Fatalf("list offsets of %s: %v", topic, err)
	}
	committed, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		e.t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	at := map[int]int64{}
	for _, p := range committed.Topics[topic] {
		at[p.Partition] = p.CommittedOffset
	}
	for _, p := range ends.Topics[topic] {
		if p.LastOffset > 0 && at[p.Partition] < p.LastOffset {
			return false
		}
	}
	return true
}

// source reads this test's topics and database for verify.
func (e *env) source() *verify.Source {
	e.t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{e.chAddr}, Auth: clickhouse.Auth{Database: e.database}})
	if err != nil {
		e.t.Fatalf("open clickhouse: %v", err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	return &verify.Source{Brokers: e.brokers, Dialer: &kafka.Dialer{Timeout: 10 * time.Second}, Conn: conn}
}

// reconcileProduced accounts for the ratings produced, leaving out the
// copies replays sent (dlq.replayed-from): each must have landed once in
// shadow FINAL. The dead letters are left out too: after the replays they
// explain nothing any more, and verify would count a rating both landed
// and dead-lettered as duplicated.
func (e *env) reconcileProduced(src *verify.Source) verify.Report {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs, err := src.Records(ctx, e.ratings, time.Time{})
	if err != nil {
		e.t.Fatalf("read %s: %v", e.ratings, err)
	}
	var inputs []verify.Input
	from, to := int64(1<<62), int64(0)
	for _, m := range msgs {
		if wire.HeaderValue(m.Headers, dlq.HeaderReplayedFrom) != "" {
			continue
		}
		inputs = append(inputs, verify.Input{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Time: m.Time.Unix(), Key: m.Key, Value: m.Value})
		from, to = min(from, m.Time.Unix()), max(to, m.Time.Unix())
	}
	rows, err := src.ShadowRows(ctx, from, to)
	if err != nil {
		e.t.Fatalf("read shadow: %v", err)
	}
	return verify.ReconcileRatings(inputs, rows, nil)
}

func TestDLQReplayOfRatingsDeadLetteredForTheirRangeCountsEachOnce(t *testing.T) {
	e := newEnv(t)
	o := e.dlqReplayScenario(400, false)
	t.Log(o.line())
	if o.report.Landed != o.produced || o.report.Duplicated != 0 || o.replayed == 0 {
		t.Errorf("%s", o.line())
	}
}
