package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/metrics"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve starts a Server for cfg on a 127.0.0.1:0 listener and returns its
// base URL. The server is stopped, and Serve's result checked, when t ends.
func serve(t *testing.T, cfg Config, m *metrics.Metrics) string {
	t.Helper()
	if m == nil {
		m = metrics.New()
	}
	s, err := New(cfg, m.Registry, discard())
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + testenv.Serve(t, testenv.Listen(t), s.Serve)
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(body)
}

func decode(t *testing.T, body string) map[string]string {
	t.Helper()
	var v map[string]string
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("body %q is not a JSON object of strings: %v", body, err)
	}
	return v
}

func TestHealthzAnswersOKInJSON(t *testing.T) {
	base := serve(t, Config{}, nil)
	code, h, body := get(t, base+"/healthz")
	if code != http.StatusOK {
		t.Fatalf("GET /healthz = %d, want 200", code)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	if v := decode(t, body); len(v) != 1 || v["status"] != "OK" {
		t.Fatalf(`GET /healthz body = %s, want {"status":"OK"}`, body)
	}
}

func TestReadyReflectsTheReadyFunc(t *testing.T) {
	tests := []struct {
		name       string
		ready      func(context.Context) error
		wantCode   int
		wantStatus string
		wantReason string
	}{
		{"no ready func", nil, http.StatusOK, "OK", ""},
		{"ready func succeeds", func(context.Context) error { return nil }, http.StatusOK, "OK", ""},
		{"ready func fails", func(context.Context) error { return errors.New("kafka unreachable") }, http.StatusServiceUnavailable, "unavailable", "kafka unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := serve(t, Config{Ready: tt.ready}, nil)
			code, _, body := get(t, base+"/ready")
			if code != tt.wantCode {
				t.Fatalf("GET /ready = %d, want %d", code, tt.wantCode)
			}
			v := decode(t, body)
			if v["status"] != tt.wantStatus || v["reason"] != tt.wantReason {
				t.Fatalf("GET /ready body = %s, want status %q and reason %q", body, tt.wantStatus, tt.wantReason)
			}
		})
	}
}

func TestMetricsServesTheRegistryInPrometheusText(t *testing.T) {
	m := metrics.New()
	m.Consumed.WithLabelValues("shadow").Add(3)
	base := serve(t, Config{}, m)
	code, h, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d, want 200", code)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type = %q, want Prometheus text (text/plain)", ct)
	}
	for _, want := range []string{
		"# TYPE domination_consumed_total counter",
		`domination_consumed_total{agent="shadow"} 3`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics does not contain %q", want)
		}
	}
}

func TestExtraHandlersAreMounted(t *testing.T) {
	ws := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "feed")
	})
	base := serve(t, Config{Handlers: map[string]http.Handler{"/ws": ws}}, nil)
	code, _, body := get(t, base+"/ws")
	if code != http.StatusTeapot || body != "feed" {
		t.Fatalf("GET /ws = %d %q, want 418 \"feed\"", code, body)
	}
	// The built-in routes are still there.
	if code, _, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz = %d next to an extra handler, want 200", code)
	}
}

func TestServeReturnsNilWhenTheContextIsCancelled(t *testing.T) {
	s, err := New(Config{}, metrics.New().Registry, discard())
	if err != nil {
		t.Fatal(err)
	}
	ln := testenv.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	// Wait until it serves, so the cancel stops a running server.
	if code, _, _ := get(t, "http://"+ln.Addr().String()+"/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz = %d, want 200", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("the listener still accepts connections after Serve returned")
	}
}

func TestRunOnAPortInUseFailsNamingTheAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	s, err := New(Config{Host: "127.0.0.1", Port: port}, metrics.New().Registry, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = s.Run(ctx)
	want := "127.0.0.1:" + strconv.Itoa(port)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run = %v, want an error naming %s", err, want)
	}
}

func TestValidateRejectsAPortOutOfRange(t *testing.T) {
	tests := []struct {
		port    int
		wantErr bool
	}{
		{0, false}, // the default, 6066
		{1, false},
		{65535, false},
		{-1, true},
		{65536, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.port), func(t *testing.T) {
			err := Config{Port: tt.port}.WithDefaults().Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
