package cli_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/domination/domination/internal/cli"
	"github.com/domination/domination/internal/testenv"
)

type result struct {
	code           int
	stdout, stderr string
}

// run runs domination in-process with args (without the program name).
func run(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"domination"}, args...), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// oneErrorLine fails t unless r exited 1 with exactly one stderr line,
// "domination: …", and returns that line.
func oneErrorLine(t *testing.T, r result) string {
	t.Helper()
	if r.code != 1 {
		t.Fatalf("exit code %d, want 1 (stderr %q)", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "domination: ") {
		t.Fatalf("stderr is %q, want exactly one line starting \"domination: \"", r.stderr)
	}
	return lines[0]
}

func TestHelpListsTheCommands(t *testing.T) {
	r := run(t, "--help")
	if r.code != 0 {
		t.Fatalf("--help exited %d, stderr %q", r.code, r.stderr)
	}
	for _, cmd := range []string{"worker", "migrate", "query", "produce"} {
		if !strings.Contains(r.stdout, "   "+cmd) {
			t.Errorf("--help does not list %s:\n%s", cmd, r.stdout)
		}
	}
}

func TestWorkerHelpDocumentsTheWebPortFlagAndVariable(t *testing.T) {
	r := run(t, "worker", "--help")
	if r.code != 0 {
		t.Fatalf("worker --help exited %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"--web-port", "DOMINATION_WEB_PORT"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("worker --help does not mention %s:\n%s", want, r.stdout)
		}
	}
}

func TestAnUnknownFlagExitsOneWithOneLine(t *testing.T) {
	tests := [][]string{
		{"--no-such-flag"},
		{"worker", "--no-such-flag"},
		{"migrate", "up", "--no-such-flag"},
		{"query", "shadow", "--no-such-flag"},
		{"healthcheck", "--no-such-flag"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			line := oneErrorLine(t, run(t, args...))
			if !strings.Contains(line, "no-such-flag") {
				t.Fatalf("error line %q does not name the flag", line)
			}
		})
	}
}

func TestQueryShadowRejectsBadArgumentsBeforeConnecting(t *testing.T) {
	addr := testenv.ClosedAddr(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"format", []string{"--format", "xml"}, `unknown format "xml"`},
		{"grouping", []string{"--by", "week"}, `unknown grouping "week"`},
		{"injected type", []string{"--type", "x' OR 1=1 --"}, `unknown shadow type "x' OR 1=1 --"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--clickhouse-addr", addr, "query", "shadow"}, tt.args...)
			line := oneErrorLine(t, run(t, args...))
			if !strings.Contains(line, tt.want) {
				t.Fatalf("error line %q, want it to say %s", line, tt.want)
			}
			// A connection attempt would fail naming the address.
			if strings.Contains(line, addr) || strings.Contains(line, "connect") {
				t.Fatalf("error line %q is about the connection, want the %s checked first", line, tt.name)
			}
		})
	}
}

func TestAnUnknownLogLevelFailsNamingIt(t *testing.T) {
	addr := testenv.ClosedAddr(t)
	tests := []struct {
		name string
		args []string
	}{
		{"global flag", []string{"--clickhouse-addr", addr, "-l", "loud", "migrate", "version"}},
		{"command flag", []string{"--clickhouse-addr", addr, "migrate", "version", "-l", "loud"}},
		{"command flag overrides a valid global one", []string{"--clickhouse-addr", addr, "-l", "debug", "migrate", "version", "--loglevel", "loud"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := oneErrorLine(t, run(t, tt.args...))
			if !strings.Contains(line, `log level "loud"`) {
				t.Fatalf("error line %q, want it to name log level \"loud\"", line)
			}
		})
	}
}

func TestMigrateUpAgainstAClosedPortFailsFastNamingTheAddress(t *testing.T) {
	addr := testenv.ClosedAddr(t)
	r := run(t, "--clickhouse-addr", addr, "--kafka-brokers", testenv.ClosedAddr(t), "migrate", "up")
	line := oneErrorLine(t, r)
	if !strings.Contains(line, addr) {
		t.Fatalf("error line %q does not name %s", line, addr)
	}
}

// BenchmarkMigrateUpAgainstAClosedPortFails measures how long migrate up
// takes to fail on an address that refuses connections (the spec: well
// under 10s): go test -run X -bench MigrateUpAgainstAClosedPort ./internal/cli/
func BenchmarkMigrateUpAgainstAClosedPortFails(b *testing.B) {
	addr, brokers := testenv.ClosedAddr(b), testenv.ClosedAddr(b)
	for b.Loop() {
		var stdout, stderr bytes.Buffer
		if cli.Main(context.Background(), []string{"domination", "--clickhouse-addr", addr, "--kafka-brokers", brokers, "migrate", "up"}, &stdout, &stderr) == 0 {
			b.Fatal("migrate up against a closed port exited 0")
		}
	}
}

func TestHealthcheckExitsZeroOnlyOnA200(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		wantCode int
	}{
		{"ok", http.StatusOK, 0},
		{"unavailable", http.StatusServiceUnavailable, 1},
		{"server error", http.StatusInternalServerError, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			url := srv.URL + "/healthz"
			r := run(t, "healthcheck", "--url", url)
			if tt.wantCode == 0 {
				if r.code != 0 || r.stdout != "ok\n" || r.stderr != "" {
					t.Fatalf("healthcheck = exit %d, stdout %q, stderr %q; want 0, \"ok\\n\", nothing", r.code, r.stdout, r.stderr)
				}
				return
			}
			line := oneErrorLine(t, r)
			if !strings.Contains(line, url) || !strings.Contains(line, http.StatusText(tt.status)) {
				t.Fatalf("error line %q, want it to name %s and %q", line, url, http.StatusText(tt.status))
			}
			if r.stdout != "" {
				t.Fatalf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

func TestHealthcheckAgainstAClosedPortFailsNamingTheURL(t *testing.T) {
	url := "http://" + testenv.ClosedAddr(t) + "/healthz"
	line := oneErrorLine(t, run(t, "healthcheck", "--url", url, "--timeout", "2s"))
	if !strings.Contains(line, url) {
		t.Fatalf("error line %q does not name %s", line, url)
	}
}
