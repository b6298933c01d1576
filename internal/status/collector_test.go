package status

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/wire"
)

// world is one test's own topics, groups and database, migrated, with a
// Collector on them whose clock the test moves.
type world struct {
	t       *testing.T
	cfg     Config
	client  *kafka.Client
	conn    driver.Conn
	brokers []string
	reg     *prometheus.Registry
	col     *Collector

	mu  sync.Mutex
	now time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	base := testenv.Name(t, "status")
	cfg := Config{
		Shadow: agents.ShadowConfig{InputTopic: base + "-dominate", OutputTopic: base + "-shadow", DeadLetterTopic: base + "-dominate-dlq", GroupID: base + "-workers"},
		Visits: agents.VisitsConfig{InputTopic: base + "-visits", RepartitionTopic: base + "-repartition", OutputTopic: base + "-active-visitors",
			DeadLetterTopic: base + "-visits-dlq", GroupID: base + "-visits"},
		ShadowDeadLetterTopic:         base + "-shadow-dlq",
		ActiveVisitorsDeadLetterTopic: base + "-active-visitors-dlq",
		StallAfter:                    20 * time.Second,
	}.WithDefaults()
	src := clickhouse.KafkaSource{
		Brokers: strings.Join(brokers, ","), ShadowTopic: cfg.Shadow.OutputTopic, ShadowGroup: base + "-ch-shadow",
		ActiveVisitorsTopic: cfg.Visits.OutputTopic, ActiveVisitorsGroup: base + "-ch-av",
	}
	kc := broker.Config{Brokers: brokers}
	client, err := kc.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var topics []broker.Topic
	for _, tp := range append(cfg.Shadow.Topics(), cfg.Visits.Topics()...) {
		topics = append(topics, broker.Topic(tp))
	}
	if err := broker.EnsureTopics(ctx, client, topics...); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	t.Cleanup(func() {
		names := make([]string, 0, len(topics))
		for _, tp := range topics {
			names = append(names, tp.Name)
		}
		_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: names})
	})
	for _, g := range [][2]string{{src.ShadowGroup, src.ShadowTopic}, {src.ActiveVisitorsGroup, src.ActiveVisitorsTopic}} {
		if err := broker.SeedGroupAtStart(ctx, client, g[0], g[1]); err != nil {
			t.Fatalf("seed group %s: %v", g[0], err)
		}
	}
	chc := clickhouse.Config{Addr: []string{testenv.ClickHouseAddr(t)}, Database: strings.ReplaceAll(base, "-", "_")}
	if err := clickhouse.EnsureDatabase(ctx, chc); err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(ctx, chc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := clickhouse.NewMigrator(conn, chc.Database, src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The engine tables first, so their consumers stop, then the rest.
		if err := m.Down(context.Background()); err != nil {
			t.Errorf("migrate down: %v", err)
		}
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+chc.Database)
		_ = conn.Close()
	})
	if err := m.Up(ctx); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	w := &world{t: t, cfg: cfg, client: client, conn: conn, brokers: brokers, reg: prometheus.NewRegistry(),
		now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	// The engine tables' own settings must win over these defaults.
	cfg.Engines = clickhouse.KafkaSource{ShadowGroup: "not-the-engines-group", ActiveVisitorsGroup: "nor-this"}
	w.col, err = New(cfg, client, conn, w.reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	w.col.now = w.clock
	return w
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(d)
}

// collect takes a report and publishes it, as Run does.
func (w *world) collect() Report {
	w.t.Helper()
	r, err := w.col.Collect(context.Background())
	if err != nil {
		w.t.Fatalf("collect: %v", err)
	}
	w.col.publish(r, nil)
	return r
}

func (w *world) write(topic string, msgs ...kafka.Message) {
	w.t.Helper()
	wr := &kafka.Writer{Addr: kafka.TCP(w.brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, Balancer: &kafka.Murmur2Balancer{},
		BatchTimeout: time.Millisecond, Transport: &kafka.Transport{MetadataTTL: time.Second}}
	defer wr.Close()
	if err := wr.WriteMessages(context.Background(), msgs...); err != nil {
		w.t.Fatalf("write to %s: %v", topic, err)
	}
}

func shadowEvents(from, n int, newest time.Time) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		id := fmt.Sprintf("id-%d", from+i)
		ts := newest.Add(-time.Duration(n-1-i) * time.Second).Unix()
		msgs[i] = kafka.Message{Key: []byte(id), Value: wire.AppendShadow(nil, wire.Classify(3), []byte(id), ts, 3)}
	}
	return msgs
}

func stage(t *testing.T, r Report, name string) Stage {
	t.Helper()
	for _, s := range r.Stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("report has no stage %s", name)
	return Stage{}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				ok := false
				for _, lp := range m.GetLabel() {
					ok = ok || (lp.GetName() == k && lp.GetValue() == v)
				}
				if !ok {
					continue metric
				}
			}
			sum += m.GetGauge().GetValue()
			found = true
		}
	}
	if !found {
		t.Fatalf("no %s%v in the registry", name, labels)
	}
	return sum
}

func series(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func TestAStoreDetachedFromItsEngineShowsAsStalledAndRecovers(t *testing.T) {
	w := newWorld(t)
	const shadowStage = "clickhouse:shadow"
	newest := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	w.write(w.cfg.Shadow.OutputTopic, shadowEvents(0, 100, newest)...)

	var r Report
	testenv.WaitFor(t, "the engine to drain the shadow topic", 90*time.Second, func() bool {
		r = w.collect()
		s := stage(t, r, shadowStage)
		return s.Lag == 0 && s.Store != nil && s.Store.Rows >= 100
	})
	s := stage(t, r, shadowStage)
	if s.Group == "not-the-engines-group" || !strings.HasSuffix(s.Group, "-ch-shadow") {
		t.Errorf("the shadow engine stage reads group %q, want the engine table's own", s.Group)
	}
	if s.Stalled || r.Stalled {
		t.Errorf("a drained stage is stalled: %+v", s)
	}
	if s.Store.NewestEvent == nil || !s.Store.NewestEvent.Equal(newest) || s.Store.NewestOnTopic == nil || !s.Store.NewestOnTopic.Equal(newest) {
		t.Errorf("newest event %v in the store, %v on the topic; want %v for both", s.Store.NewestEvent, s.Store.NewestOnTopic, newest)
	}
	if s.Store.FreshnessSeconds != 0 {
		t.Errorf("freshness of a drained store = %vs, want 0", s.Store.FreshnessSeconds)
	}
	if got := gauge(t, w.reg, "domination_clickhouse_store_rows", map[string]string{"table": "shadow"}); got < 100 {
		t.Errorf("domination_clickhouse_store_rows{table=shadow} = %v, want at least 100", got)
	}

	// Stop the store's intake: the engine keeps its group but commits
	// nothing while records wait.
	ctx := context.Background()
	if err := w.conn.Exec(ctx, "DETACH TABLE shadow_consumer"); err != nil {
		t.Fatal(err)
	}
	attached := false
	t.Cleanup(func() {
		if !attached {
			_ = w.conn.Exec(context.Background(), "ATTACH TABLE shadow_consumer")
		}
	})
	later := newest.Add(10 * time.Minute)
	w.write(w.cfg.Shadow.OutputTopic, shadowEvents(100, 10, later)...)
	testenv.WaitFor(t, "10 records waiting on the shadow topic", 30*time.Second, func() bool {
		return stage(t, w.collect(), shadowStage).Lag == 10
	})
	if s := stage(t, w.collect(), shadowStage); s.Stalled {
		t.Fatalf("stalled before the stall time has passed: %+v", s.Stall)
	}
	w.advance(w.cfg.StallAfter)
	r = w.collect()
	s = stage(t, r, shadowStage)
	if !s.Stalled || !r.Stalled || s.Stall == nil {
		t.Fatalf("not stalled after %s unmoved with lag %d: %+v", w.cfg.StallAfter, s.Lag, s)
	}
	p := s.Partitions[s.Stall.Partition]
	if p.Lag == 0 || !p.Stalled || p.CommittedOffset != s.Stall.Offset {
		t.Errorf("the stall names partition %d offset %d, whose partition reads %+v", s.Stall.Partition, s.Stall.Offset, p)
	}
	if !strings.Contains(s.Describe(), fmt.Sprintf("(table shadow) stalled at partition %d offset %d", s.Stall.Partition, s.Stall.Offset)) {
		t.Errorf("Describe() = %q", s.Describe())
	}
	if got := gauge(t, w.reg, "domination_clickhouse_stalled", map[string]string{"table": "shadow"}); got != 1 {
		t.Errorf("domination_clickhouse_stalled{table=shadow} = %v, want 1", got)
	}
	if got := gauge(t, w.reg, "domination_stage_stalled", map[string]string{"stage": shadowStage}); got != 1 {
		t.Errorf("domination_stage_stalled{stage=%s} = %v, want 1", shadowStage, got)
	}
	if got := gauge(t, w.reg, "domination_clickhouse_lag_records", map[string]string{"table": "shadow"}); got != 10 {
		t.Errorf("domination_clickhouse_lag_records{table=shadow} sums to %v, want 10", got)
	}
	if got := gauge(t, w.reg, "domination_clickhouse_freshness_seconds", map[string]string{"table": "shadow"}); got != 600 {
		t.Errorf("domination_clickhouse_freshness_seconds{table=shadow} = %v, want 600 (10 minutes of event time waiting)", got)
	}
	if got := gauge(t, w.reg, "domination_stage_stalled", map[string]string{"stage": "agent:shadow"}); got != 0 {
		t.Errorf("domination_stage_stalled{stage=agent:shadow} = %v, want 0", got)
	}

	if err := w.conn.Exec(ctx, "ATTACH TABLE shadow_consumer"); err != nil {
		t.Fatal(err)
	}
	attached = true
	testenv.WaitFor(t, "the engine to drain the shadow topic again", 90*time.Second, func() bool {
		r = w.collect()
		return stage(t, r, shadowStage).Lag == 0
	})
	if s := stage(t, r, shadowStage); s.Stalled || r.Stalled || s.Store.FreshnessSeconds != 0 {
		t.Errorf("after ATTACH and a drain: stalled=%v freshness=%v", s.Stalled, s.Store.FreshnessSeconds)
	}
	if got := gauge(t, w.reg, "domination_clickhouse_stalled", map[string]string{"table": "shadow"}); got != 0 {
		t.Errorf("domination_clickhouse_stalled{table=shadow} = %v after recovery, want 0", got)
	}
	if got := series(t, w.reg, "domination_clickhouse_lag_records"); got != 5 {
		t.Errorf("domination_clickhouse_lag_records has %d series, want 5 (4 shadow partitions, 1 active-visitors)", got)
	}
}

func deadLetter(reason string) kafka.Message {
	return kafka.Message{Value: []byte("x"), Headers: []kafka.Header{{Key: wire.HeaderReason, Value: []byte(reason)}}}
}

func TestDeadLettersAreCountedByReasonReadingOnlyWhatIsNew(t *testing.T) {
	w := newWorld(t)
	dlq := w.cfg.Shadow.DeadLetterTopic
	w.write(dlq, deadLetter("malformed_json"), deadLetter("malformed_json"), deadLetter("out_of_range"), kafka.Message{Value: []byte("no header")})
	counts := func(r Report, topic string) DeadLetters {
		for _, d := range r.DeadLetters {
			if d.Topic == topic {
				return d
			}
		}
		t.Fatalf("no dead-letter count for %s", topic)
		return DeadLetters{}
	}
	r := w.collect()
	d := counts(r, dlq)
	if !d.Exists || d.Total != 4 || d.ByReason["malformed_json"] != 2 || d.ByReason["out_of_range"] != 1 || d.ByReason["unknown"] != 1 {
		t.Errorf("counts after 4 dead letters: %+v", d)
	}
	for _, missing := range []string{w.cfg.ShadowDeadLetterTopic, w.cfg.ActiveVisitorsDeadLetterTopic} {
		if d := counts(r, missing); d.Exists || d.Total != 0 || d.Problem != "" {
			t.Errorf("a dead-letter topic that does not exist counts %+v, want zero and no problem", d)
		}
	}
	if d := counts(r, w.cfg.Visits.DeadLetterTopic); !d.Exists || d.Total != 0 {
		t.Errorf("empty visits dead-letter topic: %+v", d)
	}
	cur := w.col.dlq[dlq]
	if cur.next[0] != 4 {
		t.Errorf("the cursor of %s stands at %d, want 4", dlq, cur.next[0])
	}
	w.write(dlq, deadLetter("late"))
	d = counts(w.collect(), dlq)
	if d.Total != 5 || d.ByReason["late"] != 1 || d.ByReason["malformed_json"] != 2 {
		t.Errorf("counts after one more dead letter: %+v", d)
	}
	if cur.next[0] != 5 {
		t.Errorf("the cursor of %s stands at %d, want 5", dlq, cur.next[0])
	}
}

func TestTheHandlerServesTheLatestReportAndTheWindowsStageHasItsSlack(t *testing.T) {
	w := newWorld(t)
	h := w.col.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET /status before the first refresh: %d, want 503", rec.Code)
	}
	r := w.collect()
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	var got Report
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || !got.At.Equal(r.At) || len(got.Stages) != 5 {
		t.Errorf("GET /status after a refresh: %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/status", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %d, want 405", rec.Code)
	}
	win := stage(t, r, "agent:windows")
	if want := w.cfg.StallAfter + w.cfg.Visits.Window + w.cfg.Visits.Grace; time.Duration(win.StallAfter) != want || win.Group != w.cfg.Visits.GroupID+"-windows" {
		t.Errorf("windows stage: stall after %s in group %s; want %s in %s-windows", time.Duration(win.StallAfter), win.Group, want, w.cfg.Visits.GroupID)
	}
	if s := stage(t, r, "agent:shadow"); time.Duration(s.StallAfter) != w.cfg.StallAfter || s.Problem != "" || len(s.Partitions) != 4 {
		t.Errorf("shadow agent stage: %+v", s)
	}
}

func TestWithClickHouseDownTheKafkaSideIsStillReported(t *testing.T) {
	w := newWorld(t)
	down, err := clickhouse.Connect(clickhouse.Config{Addr: []string{testenv.ClosedAddr(t)}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	// A first look with ClickHouse up learns the engines' own groups.
	w.collect()
	col := w.col
	col.ch = down
	r, err := col.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect with ClickHouse down failed: %v", err)
	}
	s := stage(t, r, "clickhouse:shadow")
	if !strings.Contains(s.Problem, "clickhouse") || len(s.Partitions) != 4 || !strings.HasSuffix(s.Group, "-ch-shadow") {
		t.Errorf("shadow engine stage with ClickHouse down: problem %q, %d partitions, group %s", s.Problem, len(s.Partitions), s.Group)
	}
	if a := stage(t, r, "agent:shadow"); a.Problem != "" {
		t.Errorf("the shadow agent stage has a problem with ClickHouse down: %s", a.Problem)
	}
}

func TestReadStoresReadsWhatCollectReports(t *testing.T) {
	w := newWorld(t)
	newest := time.Date(2029, 12, 31, 23, 0, 0, 0, time.UTC)
	ctx := context.Background()
	// Two rows in two months, so two partitions. INSERT … SELECT: on 18.16
	// an INSERT with inline VALUES over the native protocol hangs.
	old := newest.Add(-40 * 24 * time.Hour)
	for _, at := range []time.Time{old, newest} {
		if err := w.conn.Exec(ctx, "INSERT INTO shadow (type, unique_id, emit_timestamp, rating) SELECT 'Sha', ?, toDateTime(?), 3",
			fmt.Sprint(at.Unix()), at.Unix()); err != nil {
			t.Fatal(err)
		}
		if err := w.conn.Exec(ctx, "INSERT INTO active_visitors (account_id, store_id, window_start, window_end, count) SELECT 1, 'uk', toDateTime(?), toDateTime(?), 2",
			at.Unix(), at.Add(10*time.Second).Unix()); err != nil {
			t.Fatal(err)
		}
	}
	stores, err := ReadStores(ctx, w.conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(stores) != 2 {
		t.Fatalf("ReadStores found %d stores, want 2: %+v", len(stores), stores)
	}
	for _, s := range stores {
		want := newest
		if s.Table == "active_visitors" {
			want = newest.Add(10 * time.Second) // the window's end
		}
		if s.Rows != 2 || s.NewestEvent == nil || !s.NewestEvent.Equal(want) || s.ErrorsRows != 0 {
			t.Errorf("%s: rows %d, newest %v, errors %d; want 2 rows, newest %v, no errors", s.Table, s.Rows, s.NewestEvent, s.ErrorsRows, want)
		}
	}
	r := w.collect()
	if got := stage(t, r, "clickhouse:active_visitors").Store; got.NewestEvent == nil || !got.NewestEvent.Equal(newest.Add(10*time.Second)) || got.Rows != 2 {
		t.Errorf("Collect's active_visitors store: %+v", got)
	}
}
