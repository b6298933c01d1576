package feed

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/domination/domination/internal/auth"
	"github.com/domination/domination/metrics"
)

// listHistory is a History over a fixed list of counts that records which
// accounts each Recent asked for.
type listHistory struct {
	mu     sync.Mutex
	counts []Count
	asked  []string
}

func (h *listHistory) Recent(_ context.Context, account *int64, n int) ([]Count, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := filter{account: account}
	h.asked = append(h.asked, f.String())
	var out []Count
	for _, c := range h.counts {
		if f.match(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, compareCounts)
	return lastN(out, n), nil
}

// scopedServer serves f's handler as the web server does once a request is
// authenticated with tok.
func scopedServer(t *testing.T, f *Feed, tok auth.Token) string {
	t.Helper()
	h := f.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.WithToken(r.Context(), tok)))
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func scopeToken(t *testing.T, scope auth.Scope) auth.Token {
	t.Helper()
	tok, err := auth.New("store", "0123456789abcdef-store", scope)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// scopedConn is a client of a scoped feed, with the reading helpers of
// ws_test.go bound to it.
type scopedConn struct {
	t *testing.T
	c *websocket.Conn
}

func dialScoped(t *testing.T, url string) scopedConn {
	t.Helper()
	return scopedConn{t, dial(t, url, nil)}
}

// next reads one count; any other frame fails the test.
func (s scopedConn) next() Count {
	s.t.Helper()
	return readCount(s.t, s.c)
}

func (s scopedConn) nextN(n int) []Count {
	s.t.Helper()
	out := make([]Count, n)
	for i := range out {
		out[i] = s.next()
	}
	return out
}

func (s scopedConn) send(msg string) {
	s.t.Helper()
	send(s.t, s.c, msg)
}

// closed reads until the server closes and returns the close frame.
func (s scopedConn) closed() *websocket.CloseError {
	s.t.Helper()
	_ = s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := s.c.ReadMessage()
		if err == nil {
			s.t.Logf("frame before the close: %s", data)
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce
		}
		s.t.Fatalf("connection ended without a close frame: %v", err)
	}
}

func scopeWindow(account, start int64, n uint64) Count {
	return Count{AccountID: account, Start: start, End: start + 10, Count: n}
}

func accountsOf(counts []Count) []int64 {
	var out []int64
	for _, c := range counts {
		out = append(out, c.AccountID)
	}
	return out
}

func TestScopedClientReceivesOnlyItsAccountsInHistoryAndLive(t *testing.T) {
	var stored []Count
	for i := int64(0); i < 9; i++ {
		stored = append(stored, scopeWindow(1+i%3, 100+i*10, uint64(i+1)))
	}
	hist := &listHistory{counts: stored}
	f, err := New(Config{}, hist, nil, metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	url := scopedServer(t, f, scopeToken(t, auth.Scope{Accounts: []int64{3, 1}}))

	c := dialScoped(t, url+"?history=100")
	got := c.nextN(6) // accounts 1 and 3 of the nine stored windows
	if a := accountsOf(got); !slices.Equal(a, []int64{1, 3, 1, 3, 1, 3}) {
		t.Fatalf("history holds accounts %v, want 1 and 3 only", a)
	}
	hist.mu.Lock()
	asked := slices.Clone(hist.asked)
	hist.mu.Unlock()
	if !slices.Equal(asked, []string{"account 1", "account 3"}) {
		t.Fatalf("history asked for %v, want one read per account of the scope", asked)
	}

	for i := int64(0); i < 6; i++ {
		f.receive(scopeWindow(1+i%3, 1000+i*10, 1))
	}
	sentinel := scopeWindow(1, 5000, 7)
	f.receive(sentinel)
	live := c.nextN(5)
	if a := accountsOf(live); !slices.Equal(a, []int64{1, 3, 1, 3, 1}) || !reflect.DeepEqual(live[4], sentinel) {
		t.Fatalf("live counts %v: want accounts 1, 3, 1, 3 and then the sentinel, nothing of account 2", live)
	}
}

func TestScopedClientFilterWithinTheScopeWorksAndOutsideIsClosedWith4403(t *testing.T) {
	f, err := New(Config{}, nil, nil, metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []int64{1, 2, 3} {
		f.receive(scopeWindow(a, 100, uint64(a)))
	}
	url := scopedServer(t, f, scopeToken(t, auth.Scope{Accounts: []int64{1, 3}}))
	c := dialScoped(t, url+"?history=10")
	if a := accountsOf(c.nextN(2)); !slices.Equal(a, []int64{1, 3}) {
		t.Fatalf("history holds accounts %v", a)
	}

	c.send(`{"type":"setFilter","filter":{"account":3}}`)
	if got := c.next(); !reflect.DeepEqual(got, scopeWindow(3, 100, 3)) {
		t.Fatalf("history after filtering on account 3 = %v", got)
	}
	c.send(`{"type":"setFilter","filter":{}}`)
	if a := accountsOf(c.nextN(2)); !slices.Equal(a, []int64{1, 3}) {
		t.Fatalf("history after clearing the filter holds accounts %v, want the scope's", a)
	}

	c.send(`{"type":"setFilter","filter":{"account":2}}`)
	ce := c.closed()
	if ce.Code != closeOutOfScope || !strings.Contains(ce.Text, "outside") {
		t.Fatalf("close %d %q, want %d naming the scope", ce.Code, ce.Text, closeOutOfScope)
	}
	if n := value(t, f.m.FeedDropped.WithLabelValues(reasonScope)); n != 1 {
		t.Fatalf("dropped{reason=scope} = %v, want 1", n)
	}
}

func TestTokenForEveryAccountAndOpenServerSeeEverything(t *testing.T) {
	for name, tok := range map[string]*auth.Token{
		"accounts=*": ptr(scopeToken(t, auth.Scope{AllAccounts: true})),
		"no tokens":  nil,
	} {
		t.Run(name, func(t *testing.T) {
			f, err := New(Config{}, nil, nil, metrics.New())
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range []int64{1, 2, 3} {
				f.receive(scopeWindow(a, 100, 1))
			}
			var url string
			if tok != nil {
				url = scopedServer(t, f, *tok)
			} else {
				srv := httptest.NewServer(f.Handler())
				t.Cleanup(srv.Close)
				url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
			}
			c := dialScoped(t, url+"?history=10")
			if a := accountsOf(c.nextN(3)); !slices.Equal(a, []int64{1, 2, 3}) {
				t.Fatalf("history holds accounts %v, want all three", a)
			}
			c.send(`{"type":"setFilter","filter":{"account":2}}`)
			if got := c.next(); got.AccountID != 2 {
				t.Fatalf("after filtering on account 2 got %v", got)
			}
		})
	}
}

func TestTokenWithoutAccountsIsRefusedBeforeTheUpgrade(t *testing.T) {
	f, err := New(Config{}, nil, nil, metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	url := scopedServer(t, f, scopeToken(t, auth.Scope{Metrics: true}))
	_, res, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("dial with a metrics-only token: %v, want HTTP 403", err)
	}
}

func TestRecentForKeepsOnlyWhatTheFilterMatches(t *testing.T) {
	// A History that ignores the accounts it is asked for must not leak
	// another account to a scoped client.
	leaky := historyFunc(func(context.Context, *int64, int) ([]Count, error) {
		return []Count{scopeWindow(1, 100, 1), scopeWindow(2, 100, 1), scopeWindow(3, 100, 1)}, nil
	})
	got, err := recentFor(context.Background(), leaky, filter{scope: accountScope{1, 3}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if a := accountsOf(got); !slices.Equal(a, []int64{1, 3}) {
		t.Fatalf("recentFor kept accounts %v, want 1 and 3", a)
	}
}

type historyFunc func(ctx context.Context, account *int64, n int) ([]Count, error)

func (h historyFunc) Recent(ctx context.Context, account *int64, n int) ([]Count, error) {
	return h(ctx, account, n)
}

func ptr[T any](v T) *T { return &v }
