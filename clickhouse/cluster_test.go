package clickhouse

import (
	"regexp"
	"strings"
	"testing"

	"github.com/domination/domination/internal/testenv"
)

func TestClusterStatementRunsEveryDDLOnTheClusterWithQualifiedNames(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{"drop", "DROP TABLE IF EXISTS shadow_consumer", "DROP TABLE IF EXISTS db.shadow_consumer ON CLUSTER `c`", ""},
		{"kafka table stays a kafka table",
			"CREATE TABLE s\n(\n    a Int32\n)\nENGINE = Kafka\nSETTINGS kafka_group_name = 'g'",
			"CREATE TABLE db.s ON CLUSTER `c`\n(\n    a Int32\n)\nENGINE = Kafka\nSETTINGS kafka_group_name = 'g'", ""},
		{"replacing store becomes replicated",
			"CREATE TABLE shadow\n(\n    a Int32\n)\nENGINE = ReplacingMergeTree()\nORDER BY a",
			"CREATE TABLE db.shadow ON CLUSTER `c`\n(\n    a Int32\n)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/shadow', '{replica}')\nORDER BY a", ""},
		{"engine arguments are kept after the replication ones",
			"CREATE TABLE IF NOT EXISTS t (a Int32, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY a",
			"CREATE TABLE IF NOT EXISTS db.t ON CLUSTER `c` (a Int32, v UInt64) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t', '{replica}', v) ORDER BY a", ""},
		{"view: name, target and source qualified",
			"CREATE MATERIALIZED VIEW v TO shadow AS\nSELECT a\nFROM shadow_stream\nWHERE a > 0",
			"CREATE MATERIALIZED VIEW db.v ON CLUSTER `c` TO db.shadow AS\nSELECT a\nFROM db.shadow_stream\nWHERE a > 0", ""},
		{"a join is refused", "CREATE MATERIALIZED VIEW v TO t AS SELECT a FROM x JOIN (SELECT a FROM y) USING a", "", "want one FROM table, found 2"},
		{"an unreplicated engine is refused", "CREATE TABLE t (a Int32) ENGINE = TinyLog", "", "engine TinyLog has no replicated form"},
		{"any other statement is refused", "ALTER TABLE t ADD COLUMN b Int32", "", `cannot run on a cluster: "ALTER TABLE t ADD COLUMN b Int32"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clusterStatement(tt.in, "db", "c")
			testenv.CheckErr(t, "clusterStatement", err, tt.wantErr)
			if err == nil && got != tt.want {
				t.Fatalf("clusterStatement:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestEveryMigrationRendersForACluster renders the shipped migrations for
// every server rule set and checks each statement of the result: on the
// cluster, qualified, no store left unreplicated.
func TestEveryMigrationRendersForACluster(t *testing.T) {
	bareStore := regexp.MustCompile(`ENGINE = (Replacing)?MergeTree`)
	for _, v := range []Version{Oldest, ErrorStreamSince} {
		single, err := RenderUp(KafkaSource{}, v)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := newTemplateSource(migrationFiles, "migrations", KafkaSource{}.WithDefaults(), v)
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.onCluster("analytics", "prod"); err != nil {
			t.Fatalf("%s: onCluster: %v", v, err)
		}
		for _, m := range single {
			sql := ts.rendered[m.Name]
			if !strings.HasPrefix(sql, migrationHeader+m.Name+"\n") {
				t.Errorf("%s %s: the header naming the file is gone", v, m.Name)
			}
			stmts, err := Statements(sql)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := Statements(m.SQL)
			if len(stmts) != len(want) {
				t.Errorf("%s %s: %d statements on the cluster, %d on one server", v, m.Name, len(stmts), len(want))
			}
			for _, s := range stmts {
				if !strings.Contains(s, " ON CLUSTER `prod`") || !strings.Contains(s, "analytics.") {
					t.Errorf("%s %s: not on the cluster or not qualified: %s", v, m.Name, s)
				}
				if bareStore.MatchString(s) {
					t.Errorf("%s %s: a store left unreplicated: %s", v, m.Name, s)
				}
			}
		}
	}
}

func TestWithoutAClusterTheMigrationsAreRenderedAsForOneServer(t *testing.T) {
	m, err := newMigrator(fakeConn{}, "db", migrationFiles, "migrations", KafkaSource{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	single, err := RenderUp(KafkaSource{}, Oldest)
	if err != nil {
		t.Fatal(err)
	}
	for _, mg := range single {
		if got := m.src.rendered[mg.Name]; got != mg.SQL {
			t.Errorf("%s differs from RenderUp without a cluster", mg.Name)
		}
		if strings.Contains(mg.SQL, "ON CLUSTER") || strings.Contains(mg.SQL, "Replicated") {
			t.Errorf("%s names a cluster or a replicated engine without a cluster", mg.Name)
		}
	}
	if got := versionTableDDL("db", ""); got != "CREATE TABLE IF NOT EXISTS `db`.schema_migrations (version Int64, dirty UInt8, sequence UInt64) ENGINE = TinyLog" {
		t.Errorf("version table without a cluster = %q", got)
	}
}

func TestOnClusterRefusesABadNameAndALateCall(t *testing.T) {
	m, err := newMigrator(fakeConn{}, "db", migrationFiles, "migrations", KafkaSource{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckErr(t, "OnCluster", m.OnCluster("prod; DROP"), "is not an identifier")
	m.server = &Oldest
	testenv.CheckErr(t, "OnCluster", m.OnCluster("prod"), "already rendered")
}
