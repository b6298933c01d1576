package cli_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/domination/domination/internal/testenv"
)

func TestStatusUsageErrorsExitTwoBeforeConnecting(t *testing.T) {
	closed := testenv.ClosedAddr(t)
	for _, args := range [][]string{
		{"status", "--format", "xml"},
		{"status", "--no-such-flag"},
		{"status", "extra-argument"},
		{"status", "--stall-after", "soon"},
		{"status", "--stall-after", "-1s"},
	} {
		// Services on closed ports: a usage error must not get as far.
		r := run(t, append([]string{"--kafka-brokers", closed, "--clickhouse-addr", closed}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "see --help") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a pointer to --help", args, r.code, r.stderr)
		}
	}
}

func TestStatusAgainstClosedPortsFailsFastNamingWhatIsUnreachable(t *testing.T) {
	closed := testenv.ClosedAddr(t)
	line := oneErrorLine(t, run(t, "--kafka-brokers", closed, "status", "--timeout", "2s"))
	if !strings.Contains(line, "reach kafka at") {
		t.Errorf("stderr %q does not say Kafka is unreachable", line)
	}
	line = oneErrorLine(t, run(t, "status", "--worker", "http://"+closed))
	if !strings.Contains(line, "read status of worker at http://"+closed+"/status") {
		t.Errorf("stderr %q does not name the worker", line)
	}
}

func TestStatusFromAWorkerExitsOneOnAStallNamingTableAndOffset(t *testing.T) {
	report := `{"at":"2026-12-01T10:00:00Z","stalled":true,"stages":[{"name":"clickhouse:shadow","kind":"clickhouse","topic":"shadow","group":"clickhouse-shadow","lag":7,"stall_after":"20s","stalled":true,
		"stall":{"since":"2026-12-01T09:59:00Z","partition":2,"offset":117},"partitions":[{"partition":2,"start_offset":0,"end_offset":124,"committed_offset":117,"lag":7,"waiting_since":"2026-12-01T09:59:00Z","stalled":true}],
		"store":{"table":"shadow","rows":10,"freshness_seconds":60,"errors_table":"shadow_errors","errors_rows":0}}],"dead_letters":[]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer t0k" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(report))
	}))
	defer srv.Close()
	if line := oneErrorLine(t, run(t, "status", "--worker", srv.URL)); !strings.Contains(line, "401") {
		t.Errorf("without a token: %q, want the 401", line)
	}
	r := run(t, "status", "--worker", srv.URL, "--token", "t0k")
	line := oneErrorLine(t, r)
	if !strings.Contains(line, "clickhouse:shadow (table shadow) stalled at partition 2 offset 117") {
		t.Errorf("stderr %q does not name table, partition and offset", line)
	}
	if !strings.Contains(r.stdout, "STALLED since 2026-12-01T09:59:00Z") {
		t.Errorf("the table does not show the stalled partition:\n%s", r.stdout)
	}
	r = run(t, "status", "--worker", srv.URL, "--token", "t0k", "--format", "json")
	if r.code != 1 || !strings.Contains(r.stdout, `"committed_offset": 117`) {
		t.Errorf("--format json: exit %d, stdout %s", r.code, r.stdout)
	}
}
