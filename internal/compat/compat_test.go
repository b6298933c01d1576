package compat

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/feed"
	"github.com/domination/domination/internal/guard"
	"github.com/domination/domination/internal/query"
	"github.com/domination/domination/internal/rollup"
	"github.com/domination/domination/internal/status"
	"github.com/domination/domination/internal/verify"
	"github.com/domination/domination/wire"
)

// t0 is when the fixture's events happen.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// ts is t0 plus d as the engine prints a DateTime('UTC').
func ts(d time.Duration) string { return t0.Add(d).Format(time.DateTime) }

// unix is t0 plus d in unix seconds, as text.
func unix(d time.Duration) string { return fmt.Sprint(t0.Add(d).Unix()) }

// source is a code path of the product that sends statements to
// ClickHouse. capture runs it on a connection to a Recorder (every answer
// is empty); each statement it sent is then replayed on the current engine,
// over the fixture, and must succeed. When want is set, the rows of the last
// statement must be want (in any order when anyOrder is set).
type source struct {
	name     string
	capture  func(ctx context.Context, conn driver.Conn) error
	want     [][]string
	anyOrder bool
}

func shadow(name string, q query.ShadowQuery, want ...[]string) source {
	return source{name: "query shadow " + name, want: want, capture: func(ctx context.Context, conn driver.Conn) error {
		_, err := query.Shadow(ctx, conn, q)
		return err
	}}
}

func visitors(name string, q query.ActiveVisitorsQuery, want ...[]string) source {
	return source{name: "query active-visitors " + name, want: want, capture: func(ctx context.Context, conn driver.Conn) error {
		_, err := query.ActiveVisitors(ctx, conn, q)
		return err
	}}
}

func history(name string, account *int64, n int, want ...[]string) source {
	return source{name: "feed history " + name, want: want, capture: func(ctx context.Context, conn driver.Conn) error {
		_, err := feed.NewClickHouseHistory(conn).Recent(ctx, account, n)
		return err
	}}
}

func ptr[T any](v T) *T { return &v }

// sources are every statement source the product has. A new one (status,
// the 18.16 guard, …) is one entry here: a capture function that calls the
// package's exported API with the connection it is given. The Recorder
// answers with no rows unless told otherwise (see the Answer calls below),
// so a path that needs a value to go on gets one there. Sources replay in
// order on one database: one that changes the schema goes last.
var sources = []source{
	shadow("by type", query.ShadowQuery{},
		[]string{"Sha", "2"}, []string{"Incompatible", "1"}, []string{"Dow", "1"}, []string{"ShaDow", "1"}),
	shadow("by type, filtered", query.ShadowQuery{Since: t0, Until: t0.Add(2 * time.Hour), Types: []string{"Sha", "ShaDow"}, Limit: 1},
		[]string{"Sha", "2"}),
	shadow("by type, since with a fraction", query.ShadowQuery{Since: t0.Add(500 * time.Millisecond)},
		[]string{"Incompatible", "1"}, []string{"Sha", "1"}, []string{"Dow", "1"}, []string{"ShaDow", "1"}),
	shadow("by minute", query.ShadowQuery{By: "minute", Until: t0.Add(time.Hour)},
		[]string{ts(-5 * time.Second), "Sha", "2"}, []string{ts(55 * time.Second), "Dow", "1"}),
	shadow("by hour", query.ShadowQuery{By: "hour"},
		[]string{ts(-245 * time.Second), "Sha", "2"}, []string{ts(-245 * time.Second), "Dow", "1"},
		[]string{ts(time.Hour - 245*time.Second), "ShaDow", "1"}, []string{ts(24*time.Hour - 245*time.Second), "Incompatible", "1"}),
	shadow("by day", query.ShadowQuery{By: "day", Types: []string{"Incompatible", "Sha", "Dow", "ShaDow"}, Limit: 2},
		[]string{"2026-01-02 00:00:00", "Sha", "2"}, []string{"2026-01-02 00:00:00", "Dow", "1"}),
	shadow("by day, one type", query.ShadowQuery{By: "day", Since: t0, Until: t0.Add(48 * time.Hour), Types: []string{"Incompatible"}},
		[]string{"2026-01-03 00:00:00", "Incompatible", "1"}),
	shadow("since the epoch", query.ShadowQuery{Types: []string{"Sha"}, Since: time.Unix(0, 0)},
		[]string{"Sha", "2"}),

	visitors("all", query.ActiveVisitorsQuery{},
		[]string{"1", "uk", ts(0), ts(10 * time.Second), "3"}, []string{"1", `\N`, ts(0), ts(10 * time.Second), "2"},
		[]string{"2", "us", ts(10 * time.Second), ts(20 * time.Second), "5"}, []string{"1", "", ts(20 * time.Second), ts(30 * time.Second), "1"}),
	visitors("time range and accounts", query.ActiveVisitorsQuery{Since: t0, Until: t0.Add(20 * time.Second), AccountIDs: []int64{2, 3}},
		[]string{"2", "us", ts(10 * time.Second), ts(20 * time.Second), "5"}),
	visitors("stores", query.ActiveVisitorsQuery{StoreIDs: []string{"uk", "", "x' OR 1=1 --"}},
		[]string{"1", "uk", ts(0), ts(10 * time.Second), "3"}, []string{"1", "", ts(20 * time.Second), ts(30 * time.Second), "1"}),
	visitors("null store", query.ActiveVisitorsQuery{NullStore: true},
		[]string{"1", `\N`, ts(0), ts(10 * time.Second), "2"}),
	visitors("stores or null, limited", query.ActiveVisitorsQuery{StoreIDs: []string{"us"}, NullStore: true, Limit: 1},
		[]string{"1", `\N`, ts(0), ts(10 * time.Second), "2"}),

	history("of every account", nil, 30,
		[]string{"1", "", ts(20 * time.Second), ts(30 * time.Second), "1"}, []string{"2", "us", ts(10 * time.Second), ts(20 * time.Second), "5"},
		[]string{"1", "uk", ts(0), ts(10 * time.Second), "3"}, []string{"1", `\N`, ts(0), ts(10 * time.Second), "2"}),
	history("of one account", ptr(int64(1)), 2,
		[]string{"1", "", ts(20 * time.Second), ts(30 * time.Second), "1"}, []string{"1", "uk", ts(0), ts(10 * time.Second), "3"}),

	{name: "verify ratings", anyOrder: true, capture: func(ctx context.Context, conn driver.Conn) error {
		_, err := (&verify.Source{Conn: conn}).ShadowRows(ctx, t0.Unix(), t0.Add(time.Hour).Unix())
		return err
	}, want: [][]string{
		{"a", unix(0), "Sha", "3"}, {"e", unix(time.Second), "Sha", "6"}, {"b", unix(time.Minute), "Dow", "5"}, {"c", unix(time.Hour), "ShaDow", "15"},
	}},
	{name: "verify visits", anyOrder: true, capture: func(ctx context.Context, conn driver.Conn) error {
		_, err := (&verify.Source{Conn: conn}).WindowRows(ctx, t0.Unix(), t0.Add(10*time.Second).Unix())
		return err
	}, want: [][]string{{"1", "uk", unix(0), "3"}, {"1", `\N`, unix(0), "2"}, {"2", "us", unix(10 * time.Second), "5"}}},
	{name: "migration version table", capture: func(ctx context.Context, conn driver.Conn) error {
		d := clickhouse.NewMigrateDriver(conn, "default")
		// Over HTTP, clickhouse-go asks DESCRIBE TABLE for a batch's
		// columns: replayed too, harmlessly.
		if err := d.SetVersion(3, false); err != nil {
			return err
		}
		if _, _, err := d.Version(); err != nil {
			return err
		}
		return d.Drop() // lists the tables; the Recorder has none to drop
	}},
	{name: "server version", capture: func(ctx context.Context, conn driver.Conn) error {
		_, err := clickhouse.ServerVersion(ctx, conn)
		return err
	}},
	{name: "verify, unbounded", capture: func(ctx context.Context, conn driver.Conn) error {
		s := &verify.Source{Conn: conn}
		if _, err := s.ShadowRows(ctx, -1<<62, 1<<62); err != nil {
			return err
		}
		_, err := s.WindowRows(ctx, -1<<62, 1<<62)
		return err
	}},
	{name: "rollup pass", capture: func(ctx context.Context, conn driver.Conn) error {
		// Finding the minutes to seal; the Recorder names none, so the
		// seals themselves are not sent.
		s, err := rollup.New(rollup.Config{}, conn, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		_, err = s.Pass(ctx, t0.Add(48*time.Hour))
		return err
	}},
	{name: "verify rollup", capture: func(ctx context.Context, conn driver.Conn) error {
		_, err := (&verify.Source{Conn: conn}).Rollup(ctx, t0.Add(-time.Hour), time.Time{})
		return err
	}},
	{name: "guard", capture: func(ctx context.Context, conn driver.Conn) error {
		// Noting a skipped record, then the detach and attach around the
		// commit that moves the engine's group past it.
		e := guard.NewEngine(conn, guard.Tables(clickhouse.KafkaSource{}, "", "")[0])
		if err := e.NoteSkipped(ctx, t0, guard.Skipped{Partition: 1, Offset: 42, Value: []byte("not json"), Reason: "not a JSON object"}); err != nil {
			return err
		}
		if err := e.Detach(ctx); err != nil {
			return err
		}
		return e.Attach(ctx)
	}},
	{name: "status", capture: func(ctx context.Context, conn driver.Conn) error {
		// The stores' rows, newest event times and errors-table counts.
		_, err := status.ReadStores(ctx, conn)
		return err
	}},
}

// fixture is what the topics carry, inserted through the Kafka tables'
// stand-ins and so through the views. Each store gets one event twice, as
// a re-delivery would, in separate parts that are never merged.
func fixture() []string {
	rating := func(t wire.Type, id string, at time.Duration, rating int64) string {
		return "INSERT INTO shadow_stream FORMAT JSONEachRow " + string(wire.AppendShadow(nil, t, []byte(id), t0.Add(at).Unix(), rating))
	}
	window := func(account int, store string, from time.Duration, count int) string {
		return fmt.Sprintf(`INSERT INTO active_visitors_stream FORMAT JSONEachRow {"account_id":%d,"store_id":%s,"window":[%d,%d],"count":%d}`,
			account, store, t0.Add(from).Unix(), t0.Add(from+10*time.Second).Unix(), count)
	}
	return []string{
		"SYSTEM STOP MERGES shadow",
		"SYSTEM STOP MERGES active_visitors",
		rating(wire.Sha, "a", 0, 3),
		rating(wire.Sha, "a", 0, 3),
		rating(wire.Sha, "e", time.Second, 6),
		rating(wire.Dow, "b", time.Minute, 5),
		rating(wire.ShaDow, "c", time.Hour, 15),
		rating(wire.Incompatible, "d", 24*time.Hour, 7),
		window(1, `"uk"`, 0, 3),
		window(1, `"uk"`, 0, 3),
		window(1, "null", 0, 2),
		window(2, `"us"`, 10*time.Second, 5),
		window(1, `""`, 20*time.Second, 1),
	}
}

// poison is what the engine hands the views for records that do not parse
// (_error set) or that parse but break the topic's contract: they must land
// in the errors tables, not in the stores.
func poison() []string {
	return []string{
		`INSERT INTO shadow_stream FORMAT JSONEachRow {"_topic":"shadow","_partition":0,"_offset":7,"_raw_message":"not json","_error":"Cannot parse input"}`,
		"INSERT INTO shadow_stream FORMAT JSONEachRow " + strings.TrimSuffix(string(wire.AppendShadow(nil, wire.Sha, []byte("f"), t0.Unix(), 5)), "}") +
			`,"_topic":"shadow","_partition":0,"_offset":8}`,
		fmt.Sprintf(`INSERT INTO active_visitors_stream FORMAT JSONEachRow {"account_id":1,"store_id":"uk","window":[%d,%d],"count":3,"_topic":"active-visitors","_partition":0,"_offset":9}`,
			t0.Add(10*time.Second).Unix(), t0.Unix()),
	}
}

// TestCurrentEngineRunsEveryShippedStatement runs the migrations, rendered
// for the engine's release, and every statement of every source on the
// ClickHouse engine of chdb-core. See the package doc for what this proves.
func TestCurrentEngineRunsEveryShippedStatement(t *testing.T) {
	ctx := context.Background()
	e, err := Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err) // never a skip: make test installs chdb-core
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	server, err := clickhouse.ParseVersion(e.Version)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chdb engine %s (%s), migrations rendered for %s", e.Version, e.Timezone, server)
	// Port 1 of the loopback: a Kafka table that did start would find no broker.
	migrations, err := clickhouse.RenderUp(clickhouse.KafkaSource{Brokers: "127.0.0.1:1"}, server)
	if err != nil {
		t.Fatal(err)
	}

	applied, err := Migrate(e, migrations)
	if err != nil {
		t.Fatal(err)
	}
	if applied.Kafka == 0 {
		t.Fatalf("no Kafka engine table among the %d statements of the migrations: KafkaTable no longer recognises them", applied.Statements)
	}
	tables, err := e.Run("SELECT name FROM system.tables WHERE database = currentDatabase()")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range clickhouse.ObjectsFor(server) {
		if !slices.ContainsFunc(tables, func(r []string) bool { return r[0] == o }) {
			t.Errorf("the migrations ran but %s does not exist", o)
		}
	}
	standIns, err := StandIn(e)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(applied.KafkaTables)), standIns) {
		t.Fatalf("the migrations created the Kafka engine tables %v, but %v were left to stand in for", applied.KafkaTables, standIns)
	}
	stmts := fixture()
	errorViews := server.ErrorStream()
	if errorViews {
		stmts = append(stmts, poison()...)
	}
	for _, stmt := range stmts {
		if _, err := e.Run(stmt); err != nil {
			t.Fatalf("fixture: %v\n%s", err, stmt)
		}
	}
	if errorViews {
		for table, want := range map[string][][]string{
			"shadow_errors":          {{"7", "engine"}, {"8", "view"}},
			"active_visitors_errors": {{"9", "view"}},
		} {
			rows, err := e.Run("SELECT kafka_offset, source FROM " + table + " FINAL ORDER BY kafka_offset")
			if err != nil || !slices.EqualFunc(rows, want, slices.Equal) {
				t.Errorf("%s holds %v (%v), want %v", table, rows, err, want)
			}
		}
	}
	// The duplicates are stored; only FINAL collapses them.
	for table, want := range map[string]string{"shadow": "6", "active_visitors": "5"} {
		if rows, err := e.Run("SELECT count() FROM " + table); err != nil || len(rows) != 1 || rows[0][0] != want {
			t.Fatalf("%s holds %v rows (%v), want %s: the views did not carry the fixture", table, rows, err, want)
		}
	}
	t.Logf("%d migration statements (%d Kafka engine CREATEs), Null stand-ins for %v", applied.Statements, applied.Kafka, standIns)

	// clickhouse-go writes a time.Time as a bare literal for a server in
	// the time's own zone, and with the zone named for any other: both.
	replayed := 0
	for _, tz := range []string{"UTC", "Europe/Berlin"} {
		var (
			sent strings.Builder
			ran  int
		)
		rec, conn := newRecorder(t, e, tz)
		for _, src := range sources {
			t.Run(tz+"/"+src.name, func(t *testing.T) {
				ran++
				if err := src.capture(ctx, conn); err != nil {
					t.Fatalf("capture: %v", err)
				}
				stmts := rec.Take()
				if len(stmts) == 0 {
					t.Fatal("captured no statement")
				}
				sent.WriteString(strings.Join(stmts, "\n"))
				var rows [][]string
				for _, stmt := range stmts {
					if rows, _, err = Apply(e, stmt); err != nil {
						t.Fatalf("%v\n%s", err, stmt)
					}
					replayed++
				}
				if src.want == nil {
					return
				}
				if src.anyOrder {
					slices.SortFunc(rows, compareRows)
					slices.SortFunc(src.want, compareRows)
				}
				if !slices.EqualFunc(rows, src.want, slices.Equal) {
					t.Errorf("%s\ngot  %v\nwant %v", stmts[len(stmts)-1], rows, src.want)
				}
			})
		}
		// The two forms: toDateTime('2026-01-02 03:04:05') for a server in
		// UTC, toDateTime('2026-01-02 03:04:05', 'UTC') for one elsewhere.
		// (Unless -run left sources out.)
		if ran < len(sources) {
			continue
		}
		if !strings.Contains(sent.String(), "toDateTime('") {
			t.Errorf("no source bound a time.Time for a server in %s", tz)
		}
		if zoned := strings.Contains(sent.String(), ", 'UTC')"); zoned != (tz != "UTC") {
			t.Errorf("for a server in %s clickhouse-go named the zone of a time: %v, want %v", tz, zoned, !zoned)
		}
	}
	t.Logf("%d captured statements replayed", replayed)

	// Last, as the Migrator itself sends them: down from the last version
	// to none, then up again.
	for _, op := range []struct {
		name    string
		run     func(*clickhouse.Migrator, context.Context) error
		from    int64 // the version the Recorder says is applied; 0: none
		objects []string
	}{
		{"down", (*clickhouse.Migrator).Down, int64(len(migrations)), nil},
		{"up", (*clickhouse.Migrator).Up, 0, clickhouse.ObjectsFor(server)},
	} {
		rec, conn := newRecorder(t, e, "UTC")
		if op.from > 0 {
			rec.Answer("SELECT version, dirty FROM ", []string{"Int64", "UInt8"}, []any{op.from, uint8(0)})
		}
		m, err := clickhouse.NewMigrator(conn, "default", clickhouse.KafkaSource{Brokers: "127.0.0.1:1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := op.run(m, ctx); err != nil {
			t.Fatalf("migrate %s on the recorder: %v", op.name, err)
		}
		stmts := rec.Take()
		for _, stmt := range stmts {
			if _, _, err := Apply(e, stmt); err != nil {
				t.Fatalf("migrate %s: %v\n%s", op.name, err, stmt)
			}
		}
		// golang-migrate records a dirty and a clean version per migration.
		if inserts := rec.TakeInserts(); len(inserts) != 2*len(migrations) {
			t.Errorf("migrate %s wrote %d version rows, want %d: %q", op.name, len(inserts), 2*len(migrations), inserts)
		}
		rows, err := e.Run("SELECT name FROM system.tables WHERE database = currentDatabase() AND name != 'schema_migrations' ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range rows {
			names = append(names, r[0])
		}
		if want := slices.Sorted(slices.Values(op.objects)); !slices.Equal(names, want) {
			t.Errorf("after migrate %s the database holds %v, want %v", op.name, names, want)
		}
		t.Logf("migrate %s: %d statements replayed", op.name, len(stmts))
	}
}

// newRecorder starts a Recorder for a server in tz that answers what the
// product asks before it sends anything else: the database it is in and
// the server's version (e's), and the version table's columns.
func newRecorder(t *testing.T, e *Engine, tz string) (*Recorder, driver.Conn) {
	t.Helper()
	rec := NewRecorder(tz)
	t.Cleanup(rec.Close)
	rec.Answer("SELECT currentDatabase()", []string{"String"}, []any{"default"})
	rec.Answer("SELECT version()", []string{"String"}, []any{e.Version})
	rec.Answer("SELECT count() FROM system.tables", []string{"UInt64"}, []any{uint64(0)})
	rec.Answer("SELECT name, engine, engine_full FROM system.tables", []string{"String", "String", "String"},
		[]any{"shadow", "ReplacingMergeTree", ""}, []any{"shadow_errors", "ReplacingMergeTree", ""},
		[]any{"active_visitors", "ReplacingMergeTree", ""}, []any{"active_visitors_errors", "ReplacingMergeTree", ""})
	rec.Answer("SELECT toUInt64(sum(rows)), max(max_time) FROM system.parts", []string{"UInt64", "DateTime"}, []any{uint64(6), t0})
	rec.Answer("SELECT max(window_end)", []string{"DateTime"}, []any{t0})
	rec.Answer("SELECT count() FROM shadow_errors", []string{"UInt64"}, []any{uint64(0)})
	rec.Answer("SELECT count() FROM active_visitors_errors", []string{"UInt64"}, []any{uint64(0)})
	str := []string{"String", "String", "String", "String", "String", "String", "String"}
	rec.Answer("DESCRIBE TABLE `default`.schema_migrations", str,
		[]any{"version", "Int64", "", "", "", "", ""}, []any{"dirty", "UInt8", "", "", "", "", ""}, []any{"sequence", "UInt64", "", "", "", "", ""})
	col := func(name, typ string) []any { return []any{name, typ, "", "", "", "", ""} }
	rec.Answer("DESCRIBE TABLE shadow_errors", str,
		col("kafka_topic", "String"), col("kafka_partition", "Int64"), col("kafka_offset", "Int64"), col("raw_message", "String"),
		col("error", "String"), col("source", "Enum8('engine' = 1, 'view' = 2, 'guard' = 3)"), col("noticed_at", "DateTime('UTC')"))
	conn, err := rec.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rec, conn
}

func compareRows(a, b []string) int { return slices.Compare(a, b) }

// TestMigrateAcceptsOnlyTheKafkaStartFailure proves the schema check can
// fail: a Kafka engine table with an unknown setting, or a bad error mode,
// and a statement the engine rejects outright, each stop Migrate.
func TestMigrateAcceptsOnlyTheKafkaStartFailure(t *testing.T) {
	e, err := Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	kafka := "CREATE TABLE k%d (a Int32) ENGINE = Kafka SETTINGS kafka_broker_list = '127.0.0.1:1', kafka_topic_list = 't', kafka_group_name = 'g', kafka_format = 'JSONEachRow'%s"
	for i, c := range []struct{ sql, want string }{
		{fmt.Sprintf(kafka, 1, ""), ""},
		{fmt.Sprintf(kafka, 2, ", kafka_no_such_setting = 1"), "UNKNOWN_SETTING"},
		{fmt.Sprintf(kafka, 3, ", kafka_handle_error_mode = 'skip'"), "BAD_ARGUMENTS"},
		{"CREATE MATERIALIZED VIEW v TO no_such_table AS SELECT a FROM k1", "UNKNOWN_TABLE"},
		{"SELEC count() FROM k1", "SYNTAX_ERROR"},
	} {
		_, err := Migrate(e, []clickhouse.Migration{{Version: uint(i + 1), Name: fmt.Sprintf("case%d.sql", i+1), SQL: c.sql}})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.sql, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error with %s", c.sql, err, c.want)
		}
	}
}
