package clickhouse

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/golang-migrate/migrate/v4/database"

	"github.com/domination/domination/internal/testenv"
)

func TestKafkaSourceDefaults(t *testing.T) {
	got := KafkaSource{}.WithDefaults()
	want := KafkaSource{
		Brokers:             "127.0.0.1:9092",
		ShadowTopic:         "shadow",
		ShadowGroup:         "clickhouse-shadow",
		ActiveVisitorsTopic: "active-visitors",
		ActiveVisitorsGroup: "clickhouse-active-visitors",
		NumConsumers:        1,
	}
	if got != want {
		t.Errorf("KafkaSource{}.WithDefaults() = %+v, want %+v", got, want)
	}
}

func TestKafkaSourceValidate(t *testing.T) {
	valid := KafkaSource{}.WithDefaults()
	for _, tc := range []struct {
		name   string
		change func(*KafkaSource)
		want   string // substring of the error; "" for valid
	}{
		{"defaults", func(*KafkaSource) {}, ""},
		{"several brokers", func(k *KafkaSource) { k.Brokers = "kafka-1:9092,kafka-2.example.com:9093,[::1]:9094" }, ""},
		{"dots, dashes, underscores", func(k *KafkaSource) { k.ShadowTopic, k.ShadowGroup = "a.b-c_D9", "g.1-x_Y" }, ""},
		{"16 consumers", func(k *KafkaSource) { k.NumConsumers = 16 }, ""},
		{"no brokers", func(k *KafkaSource) { k.Brokers = "" }, "empty broker list"},
		{"broker without port", func(k *KafkaSource) { k.Brokers = "kafka" }, `broker "kafka"`},
		{"empty broker in list", func(k *KafkaSource) { k.Brokers = "a:9092," }, `broker ""`},
		{"broker with space", func(k *KafkaSource) { k.Brokers = "a:9092, b:9092" }, `broker " b:9092"`},
		{"broker with quote", func(k *KafkaSource) { k.Brokers = "a':9092" }, "characters"},
		{"empty shadow topic", func(k *KafkaSource) { k.ShadowTopic = "" }, "empty shadow topic"},
		{"empty shadow group", func(k *KafkaSource) { k.ShadowGroup = "" }, "empty shadow group"},
		{"empty visitors topic", func(k *KafkaSource) { k.ActiveVisitorsTopic = "" }, "empty active visitors topic"},
		{"empty visitors group", func(k *KafkaSource) { k.ActiveVisitorsGroup = "" }, "empty active visitors group"},
		{"topic with quote", func(k *KafkaSource) { k.ShadowTopic = "a'b" }, "shadow topic"},
		{"topic with comma", func(k *KafkaSource) { k.ActiveVisitorsTopic = "a,b" }, "active visitors topic"},
		{"topic with space", func(k *KafkaSource) { k.ShadowTopic = "a b" }, "shadow topic"},
		{"topic with slash", func(k *KafkaSource) { k.ShadowTopic = "a/b" }, "shadow topic"},
		{"group with backslash", func(k *KafkaSource) { k.ShadowGroup = `a\b` }, "shadow group"},
		{"group with newline", func(k *KafkaSource) { k.ActiveVisitorsGroup = "a\nb" }, "active visitors group"},
		{"topic dot", func(k *KafkaSource) { k.ShadowTopic = "." }, "not allowed"},
		{"topic dot dot", func(k *KafkaSource) { k.ShadowTopic = ".." }, "not allowed"},
		{"topic too long", func(k *KafkaSource) { k.ShadowTopic = strings.Repeat("a", 250) }, "249"},
		{"zero consumers", func(k *KafkaSource) { k.NumConsumers = 0 }, "consumers"},
		{"17 consumers", func(k *KafkaSource) { k.NumConsumers = 17 }, "consumers"},
		{"negative consumers", func(k *KafkaSource) { k.NumConsumers = -1 }, "consumers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := valid
			tc.change(&k)
			testenv.CheckErr(t, "Validate()", k.Validate(), tc.want)
		})
	}
}

var quoteCases = []struct{ in, want string }{
	{"", `''`},
	{"shadow", `'shadow'`},
	{"it's", `'it\'s'`},
	{`a\b`, `'a\\b'`},
	{`\'`, `'\\\''`},
	{`a\`, `'a\\'`},
	{"'; DROP TABLE shadow; --", `'\'; DROP TABLE shadow; --'`},
	{"line\nbreak\ttab", "'line\nbreak\ttab'"},
	{"ünïcødé", `'ünïcødé'`},
}

func TestQuote(t *testing.T) {
	for _, tc := range quoteCases {
		if got := quote(tc.in); got != tc.want {
			t.Errorf("quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestQuoteReadsBackTheSameOnClickHouse(t *testing.T) {
	_, conn := testDB(t)
	for _, tc := range quoteCases {
		var got string
		if err := conn.QueryRow(context.Background(), "SELECT "+quote(tc.in)).Scan(&got); err != nil {
			t.Errorf("SELECT %s: %v", quote(tc.in), err)
			continue
		}
		if got != tc.in {
			t.Errorf("SELECT %s = %q, want %q", quote(tc.in), got, tc.in)
		}
	}
}

func TestMigrationsRenderTheKafkaSourceAsLiterals(t *testing.T) {
	src := KafkaSource{
		Brokers:             "k1:9092,k2:9092",
		ShadowTopic:         "t.shadow",
		ShadowGroup:         "g-shadow",
		ActiveVisitorsTopic: "t_av",
		ActiveVisitorsGroup: "g_av",
		NumConsumers:        3,
	}
	ts, err := newTemplateSource(migrationFiles, "migrations", src, Oldest)
	if err != nil {
		t.Fatal(err)
	}
	for file, wants := range map[string][]string{
		"000001_shadow.up.sql": {
			"kafka_broker_list = 'k1:9092,k2:9092'", "kafka_topic_list = 't.shadow'",
			"kafka_group_name = 'g-shadow'", "kafka_num_consumers = 3",
		},
		"000002_active_visitors.up.sql": {
			"kafka_broker_list = 'k1:9092,k2:9092'", "kafka_topic_list = 't_av'",
			"kafka_group_name = 'g_av'", "kafka_num_consumers = 3",
		},
	} {
		sql := ts.rendered[file]
		if !strings.HasPrefix(sql, migrationHeader+file+"\n") {
			t.Errorf("%s does not start with its header: %.60q", file, sql)
		}
		for _, w := range wants {
			if !strings.Contains(sql, w) {
				t.Errorf("%s lacks %q:\n%s", file, w, sql)
			}
		}
		if strings.Contains(sql, "{{") {
			t.Errorf("%s has unrendered actions", file)
		}
	}
}

func TestMigrationRenderFailureNamesTheFile(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"unknown field", "SELECT {{quote .NoSuchField}}"},
		{"parse error", "SELECT {{quote .ShadowTopic"},
		{"unknown function", "SELECT {{shout .ShadowTopic}}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"m/000001_ok.up.sql":  {Data: []byte("SELECT 1")},
				"m/000002_bad.up.sql": {Data: []byte(tc.body)},
			}
			_, err := newMigrator(fakeConn{}, "db", fsys, "m", KafkaSource{}, nil)
			if err == nil || !strings.Contains(err.Error(), "render migration 000002_bad.up.sql") {
				t.Errorf("newMigrator = %v, want an error naming 000002_bad.up.sql", err)
			}
		})
	}
}

func TestNewMigratorRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		conn driver.Conn
		db   string
		src  KafkaSource
		want string
	}{
		{"nil connection", nil, "db", KafkaSource{}, "nil connection"},
		{"database not an identifier", fakeConn{}, "a-b", KafkaSource{}, "not an identifier"},
		{"bad kafka source", fakeConn{}, "db", KafkaSource{ShadowTopic: "a'b"}, "shadow topic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewMigrator(tc.conn, tc.db, tc.src, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewMigrator = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// fakeConn stands in for a connection in tests that must not reach one.
type fakeConn struct{ driver.Conn }

// tables returns the tables and views of db other than the version table, by
// name, with their engines.
func tables(t *testing.T, conn driver.Conn, db string) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT name, engine FROM system.tables WHERE database = ? AND name != 'schema_migrations'", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		out[name] = engine
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustVersion(t *testing.T, m *Migrator, want uint, wantDirty bool) {
	t.Helper()
	v, dirty, err := m.Version(context.Background())
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if v != want || dirty != wantDirty {
		t.Fatalf("Version = %d, dirty %v; want %d, dirty %v", v, dirty, want, wantDirty)
	}
}

func TestMigratorUpDownUp(t *testing.T) {
	t.Parallel() // slow: dropping a Kafka engine table takes ~3s on 18.16
	cfg, conn, _, m := testMigrator(t)
	defer m.Close()
	ctx := context.Background()
	t.Cleanup(func() { _ = m.Down(context.Background()) }) // stop the Kafka consumers if a check fails

	if _, _, err := m.Version(ctx); !errors.Is(err, ErrNoVersion) {
		t.Fatalf("Version before Up = %v, want ErrNoVersion", err)
	}

	if err := m.Up(ctx); err != nil {
		t.Fatalf("Up: %v", err)
	}
	wantEngines := map[string]string{
		"shadow_stream":                     "Kafka",
		"shadow":                            "ReplacingMergeTree",
		"shadow_consumer":                   "MaterializedView",
		"active_visitors_stream":            "Kafka",
		"active_visitors":                   "ReplacingMergeTree",
		"active_visitors_consumer":          "MaterializedView",
		"shadow_errors":                     "ReplacingMergeTree",
		"active_visitors_errors":            "ReplacingMergeTree",
		"shadow_arrivals":                   "SummingMergeTree",
		"shadow_minutes":                    "ReplacingMergeTree",
		"shadow_arrivals_consumer":          "MaterializedView",
		"active_visitors_arrivals":          "SummingMergeTree",
		"active_visitors_sealed":            "MergeTree",
		"active_visitors_seals":             "ReplacingMergeTree",
		"active_visitors_arrivals_consumer": "MaterializedView",
	}
	got := tables(t, conn, cfg.Database)
	if len(got) != len(wantEngines) {
		t.Errorf("after Up: tables %v, want %v", got, wantEngines)
	}
	for name, engine := range wantEngines {
		if got[name] != engine {
			t.Errorf("after Up: %s has engine %q, want %q", name, got[name], engine)
		}
	}
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	if slices.Sort(names); !slices.Equal(names, slices.Sorted(slices.Values(Objects))) {
		t.Errorf("after Up: objects %v, want Objects %v", names, Objects)
	}
	mustVersion(t, m, 4, false)

	mustUpAgain(t, m, conn, cfg.Database, "second Up")

	if err := m.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if got := tables(t, conn, cfg.Database); len(got) != 0 {
		t.Errorf("after Down: tables %v remain", got)
	}
	if _, _, err := m.Version(ctx); !errors.Is(err, ErrNoVersion) {
		t.Errorf("Version after Down = %v, want ErrNoVersion", err)
	}
	if err := m.Down(ctx); err != nil {
		t.Errorf("second Down: %v", err)
	}

	mustUpAgain(t, m, conn, cfg.Database, "Up after Down")
	if err := m.Down(ctx); err != nil {
		t.Fatalf("final Down: %v", err)
	}
}

// mustUpAgain runs what, an Up of m, and checks that it leaves version 4,
// clean, and as many tables in db as Objects.
func mustUpAgain(t *testing.T, m *Migrator, conn driver.Conn, db, what string) {
	t.Helper()
	if err := m.Up(context.Background()); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	mustVersion(t, m, 4, false)
	if got := tables(t, conn, db); len(got) != len(Objects) {
		t.Errorf("after %s: tables %v", what, got)
	}
}

// brokenFS holds two migrations, the second failing on its second statement.
var brokenFS = fstest.MapFS{
	"m/000001_first.up.sql":     {Data: []byte("CREATE TABLE t1 (x UInt8) ENGINE = Memory;\n")},
	"m/000001_first.down.sql":   {Data: []byte("DROP TABLE IF EXISTS t1;\n")},
	"m/000002_second.up.sql":    {Data: []byte("CREATE TABLE t2 (x UInt8) ENGINE = Memory;\nCREATE TABLE t3 (x UInt8 ENGINE = Memory;\n")},
	"m/000002_second.down.sql":  {Data: []byte("DROP TABLE IF EXISTS t3;\nDROP TABLE IF EXISTS t2;\n")},
	"m/README.md":               {Data: []byte("not a migration")},
	"m/000003_third.down.sql.x": {Data: []byte("not a migration either")},
}

func TestFailedMigrationLeavesDirtyVersionAndForceRecovers(t *testing.T) {
	cfg, conn := testDB(t)
	ctx := context.Background()
	m, err := newMigrator(conn, cfg.Database, brokenFS, "m", KafkaSource{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	err = m.Up(ctx)
	if err == nil {
		t.Fatal("Up of a broken migration succeeded")
	}
	t.Log(err)
	for _, want := range []string{"migrate up", "000002_second.up.sql", "line 2", "Syntax error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	mustVersion(t, m, 2, true)

	err = m.Up(ctx)
	if !errors.Is(err, ErrDirty) || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("Up when dirty = %v, want ErrDirty at version 2", err)
	}
	if err := m.Down(ctx); !errors.Is(err, ErrDirty) {
		t.Errorf("Down when dirty = %v, want ErrDirty", err)
	}

	if err := m.Force(ctx, 99); err == nil || !strings.Contains(err.Error(), "no such migration") {
		t.Errorf("Force(99) = %v, want no such migration", err)
	}
	if err := m.Force(ctx, -2); err == nil {
		t.Error("Force(-2) succeeded")
	}

	// Repair by hand: undo what ran of 000002, then say the database is at 1.
	if err := conn.Exec(ctx, "DROP TABLE t2"); err != nil {
		t.Fatal(err)
	}
	if err := m.Force(ctx, 1); err != nil {
		t.Fatalf("Force(1): %v", err)
	}
	mustVersion(t, m, 1, false)

	fixed := fstest.MapFS{}
	for k, v := range brokenFS {
		fixed[k] = v
	}
	fixed["m/000002_second.up.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE t2 (x UInt8) ENGINE = Memory;\nCREATE TABLE t3 (x UInt8) ENGINE = Memory;\n")}
	m2, err := newMigrator(conn, cfg.Database, fixed, "m", KafkaSource{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Up(ctx); err != nil {
		t.Fatalf("Up after repair: %v", err)
	}
	mustVersion(t, m2, 2, false)
	if got := tables(t, conn, cfg.Database); len(got) != 3 {
		t.Errorf("tables %v, want t1, t2, t3", got)
	}

	if err := m2.Force(ctx, -1); err != nil {
		t.Fatalf("Force(-1): %v", err)
	}
	if _, _, err := m2.Version(ctx); !errors.Is(err, ErrNoVersion) {
		t.Errorf("Version after Force(-1) = %v, want ErrNoVersion", err)
	}
}

// cancelOnLog cancels a context when a record with the message arrives.
type cancelOnLog struct {
	slog.Handler
	msg    string
	cancel context.CancelFunc
}

func (h cancelOnLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.cancel()
	}
	return h.Handler.Handle(ctx, r)
}

func TestCancellingUpStopsBetweenMigrations(t *testing.T) {
	cfg, conn := testDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// golang-migrate logs each migration once it is done: cancel after the
	// first.
	log := slog.New(cancelOnLog{Handler: testLogger(t).Handler(), msg: "clickhouse migration", cancel: cancel})
	fixed := fstest.MapFS{
		"m/000001_a.up.sql": {Data: []byte("CREATE TABLE t1 (x UInt8) ENGINE = Memory")},
		"m/000002_b.up.sql": {Data: []byte("CREATE TABLE t2 (x UInt8) ENGINE = Memory")},
	}
	m, err := newMigrator(conn, cfg.Database, fixed, "m", KafkaSource{}, log)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Up(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Up = %v, want context.Canceled", err)
	}
	t.Log(err)
	mustVersion(t, m, 1, false)
	if got := tables(t, conn, cfg.Database); len(got) != 1 || got["t1"] == "" {
		t.Errorf("tables %v, want t1 only", got)
	}

	if err := m.Up(context.Background()); err != nil {
		t.Fatalf("Up again: %v", err)
	}
	mustVersion(t, m, 2, false)
}

func TestMigratorRefusesAConnectionInAnotherDatabase(t *testing.T) {
	cfg, conn := testDB(t)
	m, err := newMigrator(conn, "default", brokenFS, "m", KafkaSource{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Up(context.Background())
	if err == nil || !strings.Contains(err.Error(), `the connection is in database "`+cfg.Database+`", not "default"`) {
		t.Errorf("Up = %v, want a database mismatch", err)
	}
}

func TestClosedMigratorRefusesWork(t *testing.T) {
	m, err := newMigrator(fakeConn{}, "db", brokenFS, "m", KafkaSource{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Up(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Up after Close = %v", err)
	}
}

func TestMigrateDriverDropRemovesEverything(t *testing.T) {
	cfg, conn := testDB(t)
	ctx := context.Background()
	m, err := newMigrator(conn, cfg.Database, brokenFS, "m", KafkaSource{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Force(ctx, 1); err != nil { // creates schema_migrations
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE src (x UInt8) ENGINE = MergeTree() ORDER BY x",
		"CREATE TABLE dst (x UInt8) ENGINE = MergeTree() ORDER BY x",
		"CREATE MATERIALIZED VIEW mv TO dst AS SELECT x FROM src",
		"CREATE VIEW v AS SELECT x FROM src",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	d := NewMigrateDriver(conn, cfg.Database)
	if err := d.Drop(); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ?", cfg.Database).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d tables left after Drop", n)
	}
	if v, dirty, err := d.Version(); err != nil || v != database.NilVersion || dirty {
		t.Errorf("Version after Drop = %d, %v, %v; want NilVersion", v, dirty, err)
	}
	if err := d.SetVersion(1, false); err != nil {
		t.Fatalf("SetVersion after Drop: %v", err)
	}
}

func TestMigrateDriverLocksOnce(t *testing.T) {
	d := NewMigrateDriver(fakeConn{}, "db")
	if err := d.Unlock(); !errors.Is(err, database.ErrNotLocked) {
		t.Errorf("Unlock unlocked = %v", err)
	}
	if err := d.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := d.Lock(); !errors.Is(err, database.ErrLocked) {
		t.Errorf("second Lock = %v, want ErrLocked", err)
	}
	if err := d.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := d.Lock(); err != nil {
		t.Errorf("Lock after Unlock = %v", err)
	}
}
