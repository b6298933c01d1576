package clickhouse

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/domination/domination/internal/testenv"
)

func TestConfigDefaults(t *testing.T) {
	got := Config{}.WithDefaults()
	if len(got.Addr) != 1 || got.Addr[0] != "127.0.0.1:9000" || got.Database != "default" ||
		got.Username != "default" || got.DialTimeout != 5*time.Second || got.MaxOpenConns != 4 ||
		got.QueryTimeout != 0 || got.Password != "" || got.TLS != nil {
		t.Errorf("Config{}.WithDefaults() = %+v", got)
	}
	set := Config{Addr: []string{"ch:9440"}, Database: "d", Username: "u", DialTimeout: time.Second, MaxOpenConns: 1}
	if got := set.WithDefaults(); got.Addr[0] != "ch:9440" || got.Database != "d" || got.Username != "u" ||
		got.DialTimeout != time.Second || got.MaxOpenConns != 1 {
		t.Errorf("WithDefaults changed set fields: %+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"zero value is valid", Config{}, ""},
		{"several addresses", Config{Addr: []string{"a:9000", "[::1]:9000"}}, ""},
		{"address without port", Config{Addr: []string{"localhost"}}, `address "localhost": want host:port`},
		{"address without host", Config{Addr: []string{":9000"}}, "empty host"},
		{"port not a number", Config{Addr: []string{"a:http"}}, "port"},
		{"port out of range", Config{Addr: []string{"a:70000"}}, "port"},
		{"database with dash", Config{Database: "my-db"}, "not an identifier"},
		{"database with backquote", Config{Database: "a`b"}, "not an identifier"},
		{"database starting with digit", Config{Database: "1db"}, "not an identifier"},
		{"database with underscore", Config{Database: "_db_1"}, ""},
		{"negative dial timeout", Config{DialTimeout: -time.Second}, "dial timeout"},
		{"negative query timeout", Config{QueryTimeout: -time.Second}, "query timeout"},
		{"negative max conns", Config{MaxOpenConns: -1}, "max open connections"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.CheckErr(t, "Validate()", tc.cfg.WithDefaults().Validate(), tc.want)
		})
	}
}

func TestQuoteIdentifier(t *testing.T) {
	for in, want := range map[string]string{
		"db":   "`db`",
		"a`b":  "`a\\`b`",
		`a\b`:  "`a\\\\b`",
		"":     "``",
		"ünï":  "`ünï`",
		"a b;": "`a b;`",
	} {
		if got := quoteIdentifier(in); got != want {
			t.Errorf("quoteIdentifier(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestOpenFailsFastNamingTheAddressWhenNothingListens(t *testing.T) {
	addr := testenv.ClosedAddr(t)
	start := time.Now()
	conn, err := Open(context.Background(), Config{Addr: []string{addr}, Password: "hunter2"})
	elapsed := time.Since(start)
	if err == nil {
		_ = conn.Close()
		t.Fatal("Open succeeded against a closed port")
	}
	t.Logf("after %v: %v", elapsed, err)
	msg := err.Error()
	if !strings.HasPrefix(msg, "connect to clickhouse at "+addr+": ") || !strings.Contains(msg, "refused") {
		t.Errorf("error %q does not name the address and the cause", msg)
	}
	if strings.Contains(msg, "\n") || strings.Contains(msg, "hunter2") {
		t.Errorf("error %q spans lines or shows the password", msg)
	}
	if elapsed > 10*time.Second {
		t.Errorf("Open took %v to fail, want under 10s", elapsed)
	}
}

func TestOpenGivesUpOnAServerThatNeverAnswers(t *testing.T) {
	// A listener that accepts and then says nothing: without a deadline of
	// its own the handshake would wait for clickhouse-go's read timeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	conn, err := Open(context.Background(), Config{Addr: []string{l.Addr().String()}, DialTimeout: 500 * time.Millisecond})
	elapsed := time.Since(start)
	if err == nil {
		_ = conn.Close()
		t.Fatal("Open succeeded against a silent server")
	}
	t.Logf("after %v: %v", elapsed, err)
	if !strings.Contains(err.Error(), l.Addr().String()) {
		t.Errorf("error %q does not name the address", err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("Open took %v to fail, want under 10s", elapsed)
	}
}

func TestOpenWrongPasswordDoesNotShowIt(t *testing.T) {
	addr := testenv.ClickHouseAddr(t)
	const pw = "not-the-password-4711"
	conn, err := Open(context.Background(), Config{Addr: []string{addr}, Password: pw})
	if err == nil {
		_ = conn.Close()
		t.Fatal("Open succeeded with a wrong password")
	}
	t.Log(err)
	if strings.Contains(err.Error(), pw) {
		t.Errorf("error %q shows the password", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address", err)
	}
}

func TestOpenConnectsToTheConfiguredDatabase(t *testing.T) {
	cfg, conn := testDB(t)
	var current string
	if err := conn.QueryRow(context.Background(), "SELECT currentDatabase()").Scan(&current); err != nil {
		t.Fatal(err)
	}
	if current != cfg.Database {
		t.Errorf("currentDatabase() = %q, want %q", current, cfg.Database)
	}
}

func TestEnsureDatabaseIsIdempotent(t *testing.T) {
	cfg, conn := testDB(t) // created once by testDB
	if err := EnsureDatabase(context.Background(), cfg); err != nil {
		t.Fatalf("second EnsureDatabase: %v", err)
	}
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.databases WHERE name = ?", cfg.Database).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d databases named %s, want 1", n, cfg.Database)
	}
}

func TestEnsureDatabaseRejectsANameThatIsNotAnIdentifier(t *testing.T) {
	// No server is needed: the name is refused before connecting.
	err := EnsureDatabase(context.Background(), Config{Addr: []string{testenv.ClosedAddr(t)}, Database: "x; DROP DATABASE default"})
	if err == nil || !strings.Contains(err.Error(), "not an identifier") {
		t.Errorf("EnsureDatabase = %v, want an identifier error", err)
	}
}
