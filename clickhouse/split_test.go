package clickhouse

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		want   []statement
	}{
		{"empty", "", nil},
		{"only space and comments", " \n-- a comment; still\n/* and; another */\n", nil},
		{"one without semicolon", "SELECT 1", []statement{{"SELECT 1", 1}}},
		{"one with semicolon", "SELECT 1;", []statement{{"SELECT 1", 1}}},
		{"empty statements dropped", ";;SELECT 1;; ;", []statement{{"SELECT 1", 1}}},
		{"two on their lines", "SELECT 1;\n\nSELECT 2;\n", []statement{{"SELECT 1", 1}, {"SELECT 2", 3}}},
		{"leading comment dropped", "-- first\nSELECT 1;", []statement{{"SELECT 1", 2}}},
		{"inner comment kept", "SELECT 1 -- one;\n+ 2;", []statement{{"SELECT 1 -- one;\n+ 2", 1}}},
		{"block comment with semicolon", "SELECT /* ; */ 1; SELECT 2", []statement{{"SELECT /* ; */ 1", 1}, {"SELECT 2", 1}}},
		{"multi-line block comment counts lines", "/*\n\n*/ SELECT 1", []statement{{"SELECT 1", 3}}},
		{"semicolon in string", "SELECT 'a;b'; SELECT 2", []statement{{"SELECT 'a;b'", 1}, {"SELECT 2", 1}}},
		{"escaped quote in string", `SELECT 'it\'s;'; SELECT 2`, []statement{{`SELECT 'it\'s;'`, 1}, {"SELECT 2", 1}}},
		{"doubled quote in string", `SELECT 'it''s;'; SELECT 2`, []statement{{`SELECT 'it''s;'`, 1}, {"SELECT 2", 1}}},
		{"escaped backslash ends string", `SELECT 'a\\'; SELECT 2`, []statement{{`SELECT 'a\\'`, 1}, {"SELECT 2", 1}}},
		{"comment marks in string", "SELECT '-- no', '/* no'; SELECT 2", []statement{{"SELECT '-- no', '/* no'", 1}, {"SELECT 2", 1}}},
		{"backquoted identifier", "SELECT `a;b` FROM t; SELECT 2", []statement{{"SELECT `a;b` FROM t", 1}, {"SELECT 2", 1}}},
		{"double-quoted identifier", `SELECT "a;b" FROM t; SELECT 2`, []statement{{`SELECT "a;b" FROM t`, 1}, {"SELECT 2", 1}}},
		{"newline in string counts", "SELECT 'a\nb';\nSELECT 2", []statement{{"SELECT 'a\nb'", 1}, {"SELECT 2", 3}}},
		{"statement starting with a quote", "'x';", []statement{{"'x'", 1}}},
		{"single dash is code", "SELECT 2-1; SELECT 3", []statement{{"SELECT 2-1", 1}, {"SELECT 3", 1}}},
		{"slash is code", "SELECT 4/2", []statement{{"SELECT 4/2", 1}}},
		{"trailing comment without newline", "SELECT 1; -- end", []statement{{"SELECT 1", 1}}},
		{"crlf", "SELECT 1;\r\nSELECT 2;\r\n", []statement{{"SELECT 1", 1}, {"SELECT 2", 2}}},
		{"utf-8", "SELECT 'ünï;cødé' AS `ä`; SELECT 2", []statement{{"SELECT 'ünï;cødé' AS `ä`", 1}, {"SELECT 2", 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitStatements(tc.script)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("splitStatements(%q)\n got %+v\nwant %+v", tc.script, got, tc.want)
			}
		})
	}
}

func TestSplitStatementsRejectsUnterminated(t *testing.T) {
	for _, tc := range []struct{ script, want string }{
		{"SELECT 1;\nSELECT 'abc", "line 2: unterminated ' quote"},
		{"SELECT `abc", "line 1: unterminated ` quote"},
		{`SELECT "abc`, `line 1: unterminated " quote`},
		{`SELECT 'abc\'`, "line 1: unterminated ' quote"},
		{"\n\nSELECT /* abc", "line 3: unterminated /* comment"},
	} {
		_, err := splitStatements(tc.script)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("splitStatements(%q) = %v, want an error containing %q", tc.script, err, tc.want)
		}
	}
}

func TestSplitStatementsOfShippedMigrations(t *testing.T) {
	// Every shipped file, rendered for the oldest and a current server, cuts
	// into the statements it is meant to hold, each a CREATE or a DROP.
	want := map[string][2]int{ // file → statements on 18.16, on a current release
		"000001_shadow.up.sql":            {3, 3},
		"000001_shadow.down.sql":          {3, 3},
		"000002_active_visitors.up.sql":   {3, 3},
		"000002_active_visitors.down.sql": {3, 3},
		"000003_errors.up.sql":            {6, 12},
		"000003_errors.down.sql":          {8, 12},
		"000004_rollups.up.sql":           {7, 7},
		"000004_rollups.down.sql":         {7, 7},
	}
	for i, v := range []Version{Oldest, {26, 9, 0}} {
		src, err := newTemplateSource(migrationFiles, "migrations", KafkaSource{}.WithDefaults(), v)
		if err != nil {
			t.Fatal(err)
		}
		if len(src.rendered) != len(want) {
			t.Errorf("%s: %d files rendered, want %d", v, len(src.rendered), len(want))
		}
		for name, sql := range src.rendered {
			stmts, err := splitStatements(sql)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if n := want[name][i]; len(stmts) != n {
				t.Errorf("%s for %s: %d statements, want %d: %+v", name, v, len(stmts), n, stmts)
			}
			for _, s := range stmts {
				if !strings.HasPrefix(s.SQL, "CREATE ") && !strings.HasPrefix(s.SQL, "DROP TABLE IF EXISTS ") {
					t.Errorf("%s: statement at line %d is neither a CREATE nor a DROP TABLE IF EXISTS: %q", name, s.Line, s.SQL)
				}
			}
		}
	}
}
