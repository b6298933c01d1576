package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/domination/domination/internal/testenv"
	"github.com/domination/domination/metrics"
)

func testLogger(testing.TB) *slog.Logger {
	if os.Getenv("FEED_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newTestFeed serves a Feed, without Run, on an httptest server; the test
// pushes counts with f.receive.
func newTestFeed(t *testing.T, cfg Config, history History) (*Feed, *httptest.Server) {
	t.Helper()
	f, err := New(cfg, history, testLogger(t), metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	return f, newServer(t, f)
}

// goRun runs f with src on a goroutine until ctx ends. The returned wait
// returns what the run returned, and fails t when it has not returned
// within d.
func goRun(t *testing.T, ctx context.Context, f *Feed, src source) (wait func(d time.Duration) error) {
	runErr := make(chan error, 1)
	go func() { runErr <- f.run(ctx, src) }()
	return func(d time.Duration) error {
		t.Helper()
		select {
		case err := <-runErr:
			return err
		case <-time.After(d):
			t.Fatalf("Run did not return within %s of its context ending", d)
			return nil
		}
	}
}

// waitUnready waits until Ready fails naming want.
func waitUnready(t *testing.T, f *Feed, what string, within time.Duration, want string) {
	t.Helper()
	testenv.WaitFor(t, what, within, func() bool {
		err := f.Ready(context.Background())
		return err != nil && strings.Contains(err.Error(), want)
	})
}

func newServer(t *testing.T, f *Feed) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func wsURL(srv *httptest.Server, query string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws" + query
}

func dial(t *testing.T, url string, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialStatus dials and returns the HTTP status of a refused handshake.
func dialStatus(t *testing.T, url string, hdr http.Header) int {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if err == nil {
		_ = c.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return resp.StatusCode
}

func readFrame(t *testing.T, c *websocket.Conn) frameCount {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("frame type %d, want text", typ)
	}
	return decodeFrame(t, data)
}

func same(a, b Count) bool { return reflect.DeepEqual(a, b) }

func readCount(t *testing.T, c *websocket.Conn) Count {
	t.Helper()
	f := readFrame(t, c)
	if f.Type != "" {
		t.Fatalf("got a %s frame (%s), want a count", f.Type, f.Error)
	}
	return f.count()
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("send %s: %v", msg, err)
	}
}

// closeCode reads until the connection ends and returns the close code, or
// -1 when it ended without a close frame.
func closeCode(t *testing.T, c *websocket.Conn, within time.Duration) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if isTimeout(err) {
			t.Fatalf("connection still open after %s", within)
		}
		return -1
	}
}

func TestSetFilterReceivesOnlyThatAccount(t *testing.T) {
	f, srv := newTestFeed(t, Config{}, nil)
	f.receive(win(2, 0, 1))
	all := dial(t, wsURL(srv, "?history=1"), nil)
	one := dial(t, wsURL(srv, "?history=1"), nil)
	for _, c := range []*websocket.Conn{all, one} {
		if got := readCount(t, c); !same(got, win(2, 0, 1)) {
			t.Fatalf("history = %v", got)
		}
	}
	send(t, one, `{"type":"setFilter","filter":{"account":2}}`)
	if got := readCount(t, one); !same(got, win(2, 0, 1)) { // the history again, filtered
		t.Fatalf("history after setFilter = %v", got)
	}

	var want2 []Count
	for i := int64(1); i <= 30; i++ {
		c := win(1+i%3, i*10, uint64(i))
		f.receive(c)
		if c.AccountID == 2 {
			want2 = append(want2, c)
		}
	}
	for i := int64(1); i <= 30; i++ {
		if got, want := readCount(t, all), win(1+i%3, i*10, uint64(i)); !same(got, want) {
			t.Fatalf("unfiltered client got %v, want %v", got, want)
		}
	}
	for _, want := range want2 {
		if got := readCount(t, one); !same(got, want) {
			t.Fatalf("filtered client got %v, want %v", got, want)
		}
	}

	// Clearing the filter: history of all accounts, then every account.
	send(t, one, `{"type":"setFilter","filter":{"account":null}}`)
	if got := readCount(t, one); !same(got, win(1, 300, 30)) {
		t.Fatalf("history after clearing = %v", got)
	}
	f.receive(win(3, 1000, 1))
	if got := readCount(t, one); !same(got, win(3, 1000, 1)) {
		t.Fatalf("after clearing got %v", got)
	}
}

func TestLateClientGetsHistoryThenLiveWithoutGapOrRepeat(t *testing.T) {
	hist := &fakeHistory{delay: 30 * time.Millisecond}
	f, srv := newTestFeed(t, Config{SendQueue: 4096}, hist)
	// ClickHouse has windows 0..90, Kafka's ring 50..190.
	for s := int64(0); s < 100; s += 10 {
		hist.add(win(1, s, 1))
	}
	for s := int64(50); s < 200; s += 10 {
		f.receive(win(1, s, 1))
	}
	// Live counts keep arriving while the client connects; ClickHouse
	// catches up with some of them before the history is read.
	const last = 200 + 10*499
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := int64(200); s <= last; s += 10 {
			if s == 300 {
				close(started)
			}
			f.receive(win(1, s, 1))
			if s%30 == 0 {
				hist.add(win(1, s, 1))
			}
			if s%100 == 0 {
				runtime.Gosched() // let the client's connect interleave
			}
		}
	}()
	<-started
	c := dial(t, wsURL(srv, "?history=1000"), nil)
	next := int64(0)
	for next <= last {
		got := readCount(t, c)
		if got.Start != next {
			t.Fatalf("got window %d, want %d: a window missing or repeated at the seam", got.Start, next)
		}
		next += 10
	}
	<-done
	f.receive(win(1, last+10, 1))
	if got := readCount(t, c); got.Start != last+10 {
		t.Fatalf("after the seam got %d", got.Start)
	}
}

func TestSlowClientIsDroppedWhileOthersKeepReceiving(t *testing.T) {
	f, srv := newTestFeed(t, Config{SendQueue: 64}, nil)
	slow := dial(t, wsURL(srv, "?history=0"), nil) // never reads
	good := dial(t, wsURL(srv, "?history=0"), nil)
	testenv.WaitFor(t, "two clients", 2*time.Second, func() bool { return f.Clients() == 2 })

	var received atomic.Int64
	var live atomic.Bool
	errc := make(chan error, 1)
	go func() {
		for want := int64(0); ; {
			_, data, err := good.ReadMessage()
			if err != nil {
				errc <- err
				return
			}
			got := decodeFrame(t, data)
			if got.AccountID == 2 { // a probe
				live.Store(true)
				continue
			}
			if got.TsFrom != want*10 {
				errc <- errors.New("good client got window " + string(data) + " out of order")
				return
			}
			want++
			received.Store(want)
		}
	}()
	// A registered client receives the counts published once its
	// subscription has settled; probes (account 2) until one arrives say
	// when that is.
	probe := int64(0)
	testenv.WaitFor(t, "the good client to receive live counts", 10*time.Second, func() bool {
		probe++
		f.receive(Count{AccountID: 2, Start: -probe * 10, End: -probe*10 + 10, Count: 1})
		return live.Load()
	})

	big := strings.Repeat("s", 2048) // fills the slow client's socket sooner
	var sent int64
	dropped := func() bool { return value(t, f.m.FeedDropped.WithLabelValues(reasonSlow)) == 1 }
	for extra := 0; extra < 5 || sent < 3000; {
		if dropped() {
			extra++
		}
		for range 50 {
			f.receive(Count{AccountID: 1, StoreID: &big, Start: sent * 10, End: sent*10 + 10, Count: 1})
			sent++
		}
		// The good client receives every count while the slow one stalls.
		testenv.WaitFor(t, fmt.Sprintf("the good client to receive %d counts", sent), 30*time.Second, func() bool {
			select {
			case err := <-errc:
				t.Fatalf("good client: %v", err)
			default:
			}
			return received.Load() >= sent
		})
		if sent > 100000 {
			t.Fatal("slow client not dropped after 100000 counts")
		}
	}
	testenv.WaitFor(t, "slow client gone", 5*time.Second, func() bool { return f.Clients() == 1 })
	if code := closeCode(t, slow, 10*time.Second); code != closePolicy && code != -1 {
		t.Errorf("slow client closed with %d, want 1008 or a dropped connection", code)
	}
	t.Logf("slow client dropped; good client got all %d counts", sent)
}

func TestGoroutinesReturnToBaselineAfterClientsLeave(t *testing.T) {
	base := runtime.NumGoroutine()
	hist := &fakeHistory{delay: 10 * time.Millisecond}
	f, err := New(Config{PingInterval: 20 * time.Millisecond, PongWait: time.Second, WriteTimeout: time.Second}, hist, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f.Handler())
	f.receive(win(1, 0, 1))

	var conns []*websocket.Conn
	for i := range 6 {
		c, _, err := websocket.DefaultDialer.Dial(wsURL(srv, "?history=5"), nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i%2 == 0 {
			send(t, c, `{"type":"setFilter","filter":{"account":1}}`)
		}
	}
	testenv.WaitFor(t, "six clients", 2*time.Second, func() bool { return f.Clients() == 6 })
	f.receive(win(1, 10, 1))
	send(t, conns[0], "close")
	if code := closeCode(t, conns[0], 5*time.Second); code != closeNormal {
		t.Errorf("close: code %d", code)
	}
	_ = conns[1].WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(closeNormal, "bye"))
	for _, c := range conns {
		_ = c.Close() // the rest leave abruptly
	}
	testenv.WaitFor(t, "no clients", 5*time.Second, func() bool { return f.Clients() == 0 })
	srv.Close()

	defer func() {
		if t.Failed() {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Logf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), base, b.String())
		}
	}()
	testenv.WaitFor(t, "the goroutines back to the baseline", 5*time.Second, func() bool { return runtime.NumGoroutine() <= base })
}

func TestCrossOriginHandshakeIsRefused(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		origin  func(srv *httptest.Server) string
		want    int
	}{
		{"foreign origin", nil, func(*httptest.Server) string { return "http://evil.example" }, http.StatusForbidden},
		{"same host", nil, func(s *httptest.Server) string { return s.URL }, http.StatusSwitchingProtocols},
		{"no origin", nil, func(*httptest.Server) string { return "" }, http.StatusSwitchingProtocols},
		{"allowed origin", []string{"http://dash.example"}, func(*httptest.Server) string { return "http://dash.example" }, http.StatusSwitchingProtocols},
		{"star", []string{"*"}, func(*httptest.Server) string { return "http://evil.example" }, http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newTestFeed(t, Config{AllowedOrigins: tt.allowed}, nil)
			hdr := http.Header{}
			if o := tt.origin(srv); o != "" {
				hdr.Set("Origin", o)
			}
			if got := dialStatus(t, wsURL(srv, ""), hdr); got != tt.want {
				t.Fatalf("status %d, want %d", got, tt.want)
			}
			wantDropped := 0.0
			if tt.want == http.StatusForbidden {
				wantDropped = 1
			}
			if got := value(t, f.m.FeedDropped.WithLabelValues(reasonOrigin)); got != wantDropped {
				t.Errorf("dropped origin = %v, want %v", got, wantDropped)
			}
		})
	}
}

func TestOversizedFrameClosesThatClient(t *testing.T) {
	f, srv := newTestFeed(t, Config{ReadLimit: 128}, nil)
	big := dial(t, wsURL(srv, "?history=0"), nil)
	other := dial(t, wsURL(srv, "?history=0"), nil)
	send(t, big, `{"type":"setFilter","filter":{}}`+strings.Repeat(" ", 1000))
	if code := closeCode(t, big, 5*time.Second); code != websocket.CloseMessageTooBig {
		t.Errorf("close code %d, want 1009", code)
	}
	testenv.WaitFor(t, "one client left", 2*time.Second, func() bool { return f.Clients() == 1 })
	if got := value(t, f.m.FeedDropped.WithLabelValues(reasonReadLimit)); got != 1 {
		t.Errorf("dropped read_limit = %v", got)
	}
	f.receive(win(1, 0, 1))
	if got := readCount(t, other); !same(got, win(1, 0, 1)) {
		t.Errorf("other client got %v", got)
	}
}

func TestOneClientOverMaxClientsIsRefused(t *testing.T) {
	f, srv := newTestFeed(t, Config{MaxClients: 2}, nil)
	first := dial(t, wsURL(srv, ""), nil)
	dial(t, wsURL(srv, ""), nil)
	if got := dialStatus(t, wsURL(srv, ""), nil); got != http.StatusServiceUnavailable {
		t.Fatalf("third client: status %d, want 503", got)
	}
	if got := value(t, f.m.FeedDropped.WithLabelValues(reasonMaxClients)); got != 1 {
		t.Errorf("dropped max_clients = %v", got)
	}
	_ = first.Close()
	testenv.WaitFor(t, "a slot frees up", 5*time.Second, func() bool {
		return dialStatus(t, wsURL(srv, ""), nil) == http.StatusSwitchingProtocols
	})
}

func TestCloseTextClosesNormally(t *testing.T) {
	f, srv := newTestFeed(t, Config{}, nil)
	c := dial(t, wsURL(srv, "?history=0"), nil)
	send(t, c, "close")
	if code := closeCode(t, c, 5*time.Second); code != websocket.CloseNormalClosure {
		t.Errorf("close code %d, want 1000", code)
	}
	testenv.WaitFor(t, "no clients", 2*time.Second, func() bool { return f.Clients() == 0 })
}

func TestClientThatNeverAnswersPingsIsEvicted(t *testing.T) {
	f, srv := newTestFeed(t, Config{PingInterval: 30 * time.Millisecond, PongWait: 200 * time.Millisecond}, nil)
	// gorilla answers pings only while the application reads.
	dial(t, wsURL(srv, "?history=0"), nil) // never reads
	alive := dial(t, wsURL(srv, "?history=0"), nil)
	var pings atomic.Int64
	alive.SetPingHandler(func(data string) error {
		pings.Add(1)
		return alive.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := alive.ReadMessage(); err != nil {
				return
			}
		}
	}()
	testenv.WaitFor(t, "silent client evicted", 5*time.Second, func() bool {
		return value(t, f.m.FeedDropped.WithLabelValues(reasonPongTimeout)) == 1 && f.Clients() == 1
	})
	// The reading client stays over three PongWaits' worth of pings.
	since := pings.Load()
	testenv.WaitFor(t, "20 more pings answered", 10*time.Second, func() bool { return pings.Load() >= since+20 })
	if got := f.Clients(); got != 1 {
		t.Errorf("clients = %d, want the reading one", got)
	}
	if got := value(t, f.m.FeedDropped.WithLabelValues(reasonPongTimeout)); got != 1 {
		t.Errorf("dropped pong_timeout = %v, want 1", got)
	}
}

func TestMalformedMessageGetsAnErrorFrameAndKeepsTheConnection(t *testing.T) {
	f, srv := newTestFeed(t, Config{}, nil)
	f.receive(win(4, 0, 1))
	c := dial(t, wsURL(srv, "?history=1"), nil)
	if got := readCount(t, c); !same(got, win(4, 0, 1)) {
		t.Fatalf("history = %v", got)
	}
	for _, msg := range []string{`hello`, `{"type":"subscribe"}`, `{"type":"setFilter","filter":{"account":"4"}}`} {
		send(t, c, msg)
		if got := readFrame(t, c); got.Type != "error" || got.Error == "" {
			t.Fatalf("reply to %s = %+v, want an error frame", msg, got)
		}
	}
	if err := c.WriteMessage(websocket.BinaryMessage, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if got := readFrame(t, c); got.Type != "error" || !strings.Contains(got.Error, "binary") {
		t.Fatalf("reply to binary = %+v", got)
	}
	send(t, c, `{"type":"setFilter","filter":{"account":4}}`)
	if got := readCount(t, c); !same(got, win(4, 0, 1)) {
		t.Fatalf("after errors, setFilter history = %v", got)
	}
}

func TestClickHouseDownAtConnectSendsTheRingThenLive(t *testing.T) {
	hist := &fakeHistory{err: errors.New("dial tcp 127.0.0.1:9000: connection refused")}
	f, srv := newTestFeed(t, Config{}, hist)
	f.receive(win(1, 0, 1))
	c := dial(t, wsURL(srv, ""), nil)
	if got := readCount(t, c); !same(got, win(1, 0, 1)) {
		t.Fatalf("history = %v", got)
	}
	f.receive(win(1, 10, 1))
	if got := readCount(t, c); !same(got, win(1, 10, 1)) {
		t.Fatalf("live = %v", got)
	}
	if got := value(t, f.m.FeedHistoryErrors); got != 1 {
		t.Errorf("history errors = %v", got)
	}
}

func TestRunEndingClosesClientsGoingAway(t *testing.T) {
	f, srv := newTestFeed(t, Config{}, nil)
	counts := make(chan Count)
	src := func(ctx context.Context, emit func(Count)) error {
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case c := <-counts:
				emit(c)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := goRun(t, ctx, f, src)

	c := dial(t, wsURL(srv, "?history=0"), nil)
	// The handshake ends before the server registers the client; a count
	// published in between is, rightly, not the client's.
	testenv.WaitFor(t, "the client registered", 2*time.Second, func() bool { return f.Clients() == 1 })
	counts <- win(1, 0, 1)
	if got := readCount(t, c); !same(got, win(1, 0, 1)) {
		t.Fatalf("live = %v", got)
	}
	cancel()
	if code := closeCode(t, c, 5*time.Second); code != websocket.CloseGoingAway {
		t.Errorf("close code %d, want 1001", code)
	}
	if err := wait(5 * time.Second); err != nil {
		t.Errorf("run = %v", err)
	}
	if got := dialStatus(t, wsURL(srv, ""), nil); got != http.StatusServiceUnavailable {
		t.Errorf("after run: status %d, want 503", got)
	}
	if err := f.run(context.Background(), src); err == nil {
		t.Error("second run did not fail")
	}
}

func TestReadyNamesWhatIsFailing(t *testing.T) {
	hist := &fakeHistory{pingErr: errors.New("connection refused")}
	f, err := New(Config{}, hist, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = f.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "kafka active-visitors: not read yet") || !strings.Contains(err.Error(), "clickhouse: connection refused") {
		t.Fatalf("Ready = %v", err)
	}
	f.health.fetched()
	if err := f.Ready(ctx); err == nil || strings.Contains(err.Error(), "kafka") {
		t.Fatalf("Ready = %v, want clickhouse only", err)
	}
	hist.mu.Lock()
	hist.pingErr = nil
	hist.mu.Unlock()
	if err := f.Ready(ctx); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	f.health.failed(errors.New("broker down"))
	if err := f.Ready(ctx); err == nil || !strings.Contains(err.Error(), "broker down") {
		t.Fatalf("Ready = %v", err)
	}
}

// The dashboard and the alert rules name these series: the worker's
// registry serves them, every drop reason from the start.
func TestNewExportsTheFeedMetricsOnTheWorkersRegistry(t *testing.T) {
	m := metrics.New()
	if _, err := New(Config{}, nil, nil, m); err != nil {
		t.Fatal(err)
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, mf := range families {
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got[mf.GetName()] = append(got[mf.GetName()], strings.Join(labels, ","))
		}
	}
	want := map[string][]string{
		"domination_feed_clients":                {""},
		"domination_feed_counts_received_total":  {""},
		"domination_feed_counts_invalid_total":   {""},
		"domination_feed_counts_duplicate_total": {""},
		"domination_feed_frames_sent_total":      {""},
		"domination_feed_history_errors_total":   {""},
		"domination_feed_clients_dropped_total": {
			"reason=max_clients", "reason=origin", "reason=pong_timeout", "reason=read_limit", "reason=scope", "reason=slow",
		},
	}
	for name, series := range want {
		if !reflect.DeepEqual(got[name], series) {
			t.Errorf("%s: series %q, want %q", name, got[name], series)
		}
	}
}
