package clickhouse

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4/database"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Config
	}{
		{"clickhouse-native://", Config{}},
		{"clickhouse-native://ch:9000/analytics", Config{Addr: []string{"ch:9000"}, Database: "analytics"}},
		{"clickhouse://a:9000,b:9001/d", Config{Addr: []string{"a:9000", "b:9001"}, Database: "d"}},
		{"clickhouse-native://u:p%40ss@ch:9000/d", Config{Addr: []string{"ch:9000"}, Database: "d", Username: "u", Password: "p@ss"}},
		{"clickhouse-native://ch:9000?username=u&password=pw&database=d&dial_timeout=2s",
			Config{Addr: []string{"ch:9000"}, Database: "d", Username: "u", Password: "pw", DialTimeout: 2 * time.Second}},
	} {
		got, err := parseURL(tc.url)
		if err != nil {
			t.Errorf("parseURL(%q): %v", tc.url, err)
			continue
		}
		if strings.Join(got.Addr, ",") != strings.Join(tc.want.Addr, ",") || got.Database != tc.want.Database ||
			got.Username != tc.want.Username || got.Password != tc.want.Password || got.DialTimeout != tc.want.DialTimeout {
			t.Errorf("parseURL(%q) = %+v, want %+v", tc.url, got, tc.want)
		}
	}
	if got, err := parseURL("clickhouse-native://ch:9440?secure=true"); err != nil || !got.TLS.Enabled {
		t.Errorf("secure=true: %+v, %v", got, err)
	}
}

func TestParseURLRejects(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"postgres://db:5432/x", "scheme"},
		{"clickhouse-native://ch:9000/d?sslmode=on", `unknown parameter "sslmode"`},
		{"clickhouse-native://ch:9000/d?secure=maybe", "secure"},
		{"clickhouse-native://ch:9000/d?dial_timeout=5", "dial_timeout"},
		{"clickhouse-native://ch:9000/my-db", "not an identifier"},
		{"clickhouse-native://ch/d", "host:port"},
		{"clickhouse-native://u:secret%zz@ch:9000/d", "cannot parse"},
	} {
		_, err := parseURL(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseURL(%q) = %v, want an error containing %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("parseURL(%q) error %q shows the password", tc.url, err)
		}
	}
}

func TestMigrateDriverOpensFromARegisteredURL(t *testing.T) {
	cfg, _ := testDB(t)
	d, err := database.Open("clickhouse-native://" + cfg.Addr[0] + "/" + cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	if v, dirty, err := d.Version(); err != nil || v != database.NilVersion || dirty {
		t.Errorf("Version = %d, %v, %v; want NilVersion", v, dirty, err)
	}
	if err := d.SetVersion(7, true); err != nil {
		t.Fatal(err)
	}
	if v, dirty, err := d.Version(); err != nil || v != 7 || !dirty {
		t.Errorf("Version = %d, %v, %v; want 7, dirty", v, dirty, err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
