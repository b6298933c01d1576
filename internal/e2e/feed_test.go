package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/domination/domination/internal/testenv"
)

// frame is what the feed pushes to a client.
type frame struct {
	Account int64   `json:"account_id"`
	Store   *string `json:"store_id"`
	From    int64   `json:"ts_from"`
	To      int64   `json:"ts_to"`
	Count   uint64  `json:"count"`
}

func (f frame) String() string { return windowCount(f.Account, f.Store, f.From, f.Count) }

// feedClient collects the frames a WebSocket client of a worker receives.
type feedClient struct {
	t      *testing.T
	conn   *websocket.Conn
	mu     sync.Mutex
	frames []frame
	// errorFrames counts the frames that are not counts.
	errorFrames int
}

func (w *worker) dial(t *testing.T, query string) *feedClient {
	t.Helper()
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws%s", w.port, query)
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close() })
	return collect(t, conn)
}

// collect reads conn's counts into a feedClient in the background, counting
// the other frames as error frames.
func collect(t *testing.T, conn *websocket.Conn) *feedClient {
	c := &feedClient{t: t, conn: conn}
	go func() {
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var f frame
			if json.Unmarshal(msg, &f) != nil || f.To == 0 {
				c.mu.Lock()
				c.errorFrames++ // not a count (an error frame)
				c.mu.Unlock()
				continue
			}
			c.mu.Lock()
			c.frames = append(c.frames, f)
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *feedClient) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatalf("send %v: %v", v, err)
	}
}

// applied waits until the worker has handled every message sent so far:
// it answers a malformed one with an error frame, in order.
func (c *feedClient) applied() {
	c.t.Helper()
	c.mu.Lock()
	before := c.errorFrames
	c.mu.Unlock()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte("not a message")); err != nil {
		c.t.Fatalf("send: %v", err)
	}
	testenv.WaitFor(c.t, "the error frame answering a malformed message", 10*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.errorFrames > before
	})
}

func (c *feedClient) received() []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]frame(nil), c.frames...)
}

// distinct returns the received counts as sorted strings, failing if one
// window arrived with two different counts.
func (c *feedClient) distinct() []string {
	c.t.Helper()
	seen := map[string]uint64{}
	var out []string
	for _, f := range c.received() {
		k := fmt.Sprintf("%d/%v/%d", f.Account, f.Store != nil, f.From)
		if f.Store != nil {
			k += *f.Store
		}
		if n, ok := seen[k]; ok {
			if n != f.Count {
				c.t.Fatalf("window %s arrived with counts %d and %d", k, n, f.Count)
			}
			continue
		}
		seen[k] = f.Count
		out = append(out, f.String())
	}
	sort.Strings(out)
	return out
}

func only(all []string, account int64) []string {
	var out []string
	for _, s := range all {
		if strings.HasPrefix(s, fmt.Sprintf("%d/", account)) {
			out = append(out, s)
		}
	}
	return out
}

func TestFeedClientsOfTwoWorkersReceiveTheOfflineCountsAndFiltersHold(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	window := []string{"--window", fmt.Sprintf("%ds", visitWindow), "--grace", "1s"}
	w1 := e.startWorker(window...)
	w2 := e.startWorker(window...)
	testenv.WaitFor(t, "both workers ready", 30*time.Second, func() bool { return w1.ready() && w2.ready() })
	c1 := w1.dial(t, "?history=0")
	c2 := w2.dial(t, "?history=0")
	filtered := w2.dial(t, "?history=0")
	filtered.send(map[string]any{"type": "setFilter", "filter": map[string]any{"account": 2}})
	filtered.applied() // the filter is applied before the first count

	const sent = 1500
	e.cli(visitArgs(sent, 21)...)
	want := e.offlineWindows(sent, visitWindow)
	for name, c := range map[string]*feedClient{"worker 1": c1, "worker 2": c2} {
		waitForWindows(t, "the client of "+name, 60*time.Second, want, c.distinct)
	}
	waitForWindows(t, "the filtered client", 30*time.Second, only(want, 2), filtered.distinct)
	waitForWindows(t, "active_visitors", 30*time.Second, want, e.storedWindows)
}

func TestFeedLateClientGetsHistoryThenLiveWithoutGapOrRepeat(t *testing.T) {
	e := newEnv(t)
	e.migrateUp()
	w := e.startWorker("--window", fmt.Sprintf("%ds", visitWindow), "--grace", "1s")
	const phase = 500
	e.cli(visitArgs(phase, 31)...)
	first := e.offlineWindows(phase, visitWindow)
	testenv.WaitFor(t, "the first phase in active_visitors", 60*time.Second, func() bool { return len(e.storedWindows()) >= len(first) })

	late := w.dial(t, "?history=1000")
	testenv.WaitFor(t, "the history", 30*time.Second, func() bool { return len(late.received()) >= len(first) })
	history := late.received()[:len(first)]
	for i := 1; i < len(history); i++ {
		if history[i].From < history[i-1].From {
			t.Fatalf("history is not oldest first: %v then %v", history[i-1], history[i])
		}
	}

	e.cli(visitArgs(phase, 32)...)
	all := e.offlineWindows(2*phase, visitWindow)
	// Frames arrive in the order windows close, so a window repeated at
	// the seam arrives before the last window does.
	testenv.WaitFor(t, "every window on the late client", 60*time.Second, func() bool {
		have := map[string]bool{}
		for _, f := range late.received() {
			have[f.String()] = true
		}
		for _, w := range all {
			if !have[w] {
				return false
			}
		}
		return true
	})
	frames := late.received()
	seen := map[string]bool{}
	var got []string
	for _, f := range frames {
		if seen[f.String()] {
			t.Fatalf("window %s was sent twice across the seam", f)
		}
		seen[f.String()] = true
		got = append(got, f.String())
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(all, ",") {
		t.Fatalf("history + live differs from the offline recomputation: %s", diff(got, all))
	}

	// The README's way to watch the feed.
	r := e.cli("watch", "--url", fmt.Sprintf("ws://127.0.0.1:%d/ws", w.port), "--history", "5", "--count", "5", "--timeout", "30s")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 {
		t.Fatalf("domination watch printed %d lines, want 5:\n%s", len(lines), r.stdout)
	}
	for _, l := range lines {
		var f frame
		if err := json.Unmarshal([]byte(l), &f); err != nil || f.To-f.From != visitWindow {
			t.Fatalf("domination watch printed %q", l)
		}
	}
}

// ready reports whether GET /ready answers 200.
func (w *worker) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.url("/ready"), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == 200
}
