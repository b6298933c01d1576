package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/auth"
	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/internal/web"
)

const secret = "dashboard-test-token-1"

// serve runs a web server with tokens, the page public and the shadow API
// behind a token, as the worker mounts them; it returns the base URL.
func serve(t *testing.T, shadow http.Handler) string {
	t.Helper()
	tok, err := auth.New("viewer", secret, auth.Scope{Accounts: []int64{1}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Config{
		Tokens:   auth.Single(tok),
		Public:   map[string]http.Handler{"/": Handler()},
		Handlers: map[string]http.Handler{"/api/shadow": shadow},
	}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + testenv.Serve(t, testenv.Listen(t), srv.Serve)
}

func get(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestThePageLoadsWithoutATokenAndItsDataNeedsOne(t *testing.T) {
	base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"reached": "yes"})
	}))
	res, body := get(t, base+"/", "")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `src="/assets/dashboard.js"`) {
		t.Fatalf("GET / without a token: %d\n%s", res.StatusCode, body)
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	for path, typ := range map[string]string{"/assets/dashboard.js": "javascript", "/assets/dashboard.css": "text/css"} {
		res, body := get(t, base+path, "")
		if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), typ) || len(body) == 0 {
			t.Errorf("GET %s: %d %q, %d bytes", path, res.StatusCode, res.Header.Get("Content-Type"), len(body))
		}
	}
	for _, path := range []string{"/nothing-here", "/assets/no-such-file.js", "/assets/", "/assets/index.html"} {
		if res, _ := get(t, base+path, ""); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
	if res, _ := get(t, base+"/api/shadow", ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/shadow without a token: %d, want 401", res.StatusCode)
	}
	if res, _ := get(t, base+"/api/shadow", "not-the-token-at-all"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/shadow with an unknown token: %d, want 401", res.StatusCode)
	}
	if res, body := get(t, base+"/api/shadow", secret); res.StatusCode != http.StatusOK || !strings.Contains(body, "reached") {
		t.Errorf("GET /api/shadow with the token: %d %s", res.StatusCode, body)
	}
}

// TestTheAssetsFetchNothingFromElsewhere: no CDN, no absolute URL; the
// only one allowed is the SVG namespace, which is a name, not a fetch.
func TestTheAssetsFetchNothingFromElsewhere(t *testing.T) {
	absolute := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	n := 0
	err := fs.WalkDir(embedded, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := embedded.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range absolute.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s refers to %s", path, m)
			}
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("walk the assets: %v, %d files (want index.html, dashboard.css, dashboard.js)", err, n)
	}
}

var kafkaEngine = regexp.MustCompile(`ENGINE\s*=\s*Kafka\b`)

// createStores runs the shipped migrations in conn's database, but for the
// Kafka engine tables and the views that read them: the tables the queries
// read, as a worker's database has them, with no consumer. Merges are
// stopped so that duplicates stay in their parts.
func createStores(t *testing.T, conn driver.Conn) {
	t.Helper()
	migrations, err := clickhouse.RenderUp(clickhouse.KafkaSource{}, clickhouse.Oldest)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var kafkaTables []string
	for _, m := range migrations {
		stmts, err := clickhouse.Statements(m.SQL)
		if err != nil {
			t.Fatal(err)
		}
	next:
		for _, stmt := range stmts {
			f := strings.Fields(stmt)
			if len(f) < 3 || f[0] != "CREATE" {
				continue
			}
			if kafkaEngine.MatchString(stmt) {
				kafkaTables = append(kafkaTables, f[2])
				continue
			}
			for _, k := range kafkaTables {
				if regexp.MustCompile(`\bFROM\s+` + regexp.QuoteMeta(k) + `\b`).MatchString(stmt) {
					continue next
				}
			}
			if err := conn.Exec(ctx, stmt); err != nil {
				t.Fatalf("%s: %s: %v", m.Name, stmt, err)
			}
			if f[1] == "TABLE" {
				if err := conn.Exec(ctx, "SYSTEM STOP MERGES "+f[2]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestShadowAPICountsEachEventOncePerTypeAndMinute(t *testing.T) {
	conn, _ := testenv.ClickHouseDatabase(t, "dashboard")
	createStores(t, conn)
	ctx := context.Background()
	minute := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Minute)
	rows := []struct {
		typ, id string
		at      time.Time
	}{
		{"Sha", "a", minute.Add(3 * time.Second)},
		{"Sha", "a", minute.Add(3 * time.Second)}, // re-delivered: counts once
		{"Dow", "b", minute.Add(40 * time.Second)},
		{"ShaDow", "c", minute.Add(61 * time.Second)},
		{"Sha", "old", minute.Add(-2 * time.Hour)}, // before the hour
	}
	for _, r := range rows {
		// One insert each: separate parts, so FINAL has work to do.
		b, err := conn.PrepareBatch(ctx, "INSERT INTO shadow (type, unique_id, emit_timestamp, rating)")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(r.typ, r.id, r.at, int32(3)); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	base := serve(t, ShadowHandler(conn, nil))
	res, body := get(t, base+"/api/shadow?since=1h&by=minute", secret)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/shadow: %d %s", res.StatusCode, body)
	}
	var got ShadowReply
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	want := map[string]uint64{"Incompatible": 0, "Sha": 1, "Dow": 1, "ShaDow": 1}
	for k, v := range want {
		if got.Totals[k] != v {
			t.Errorf("totals %v, want %v", got.Totals, want)
			break
		}
	}
	if len(got.Buckets) != 2 || !got.Buckets[0].At.Equal(minute) || got.Buckets[0].Counts["Sha"] != 1 || got.Buckets[0].Counts["Dow"] != 1 ||
		!got.Buckets[1].At.Equal(minute.Add(time.Minute)) || got.Buckets[1].Counts["ShaDow"] != 1 {
		t.Errorf("buckets %+v, want Sha and Dow at %s, ShaDow a minute later", got.Buckets, minute)
	}
	if got.By != "minute" || got.Since.Second() != 0 || time.Since(got.Since) < time.Hour || len(got.Types) != 4 {
		t.Errorf("reply says by %q since %s types %v", got.By, got.Since, got.Types)
	}
}

func TestShadowAPIRefusesBadParametersBeforeAnyQuery(t *testing.T) {
	base := serve(t, ShadowHandler(nil, nil)) // a query would panic on the nil conn
	for _, q := range []string{"since=abc", "since=-1h", "since=48h", "since=0s", "by=day", "by=type"} {
		res, body := get(t, base+"/api/shadow?"+q, secret)
		var e struct{ Error string }
		if res.StatusCode != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("?%s: %d %s, want 400 with an error", q, res.StatusCode, body)
		}
	}
}

func TestShadowAPIReportsClickHouseFailing(t *testing.T) {
	conn, _ := testenv.ClickHouseDatabase(t, "dashboard") // no shadow table
	base := serve(t, ShadowHandler(conn, nil))
	res, body := get(t, base+"/api/shadow", secret)
	var e struct{ Error string }
	if res.StatusCode != http.StatusBadGateway || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "query shadow") {
		t.Errorf("without a shadow table: %d %s, want 502 naming the query", res.StatusCode, body)
	}
}
