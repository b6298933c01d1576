package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/domination/domination/internal/status"
	"github.com/domination/domination/internal/testenv"
)

// browser is a headless Chromium tab, with the page errors it has seen.
type browser struct {
	t      *testing.T
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

// newBrowser starts Debian's chromium headless. A machine without it fails
// the test: the suite's tools are required, as its services are.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (%v): run `bash scripts/test-deps.sh`, which installs Debian's chromium package (or `apt-get install chromium`)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1280, 900))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	err = chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				msg = "console.error"
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return b
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression into v.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// screenshot saves the whole page as a PNG under the artifacts directory
// and prints where.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv("DOMINATION_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "domination-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	// On stdout, so that the test report shows it for a passing test too.
	fmt.Printf("artifact=%s (%s)\n", path, b.t.Name())
}

// waitFor is testenv.WaitFor on the page: ok says whether the page is
// there yet and what it shows, which a timeout reports along with a
// screenshot.
func (b *browser) waitFor(what string, within time.Duration, ok func() (bool, string)) {
	b.t.Helper()
	var seen string
	defer func() {
		if b.t.Failed() {
			b.t.Logf("the page showed, waiting for %s: %s", what, seen)
			if png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)); err == nil {
				path := filepath.Join(os.TempDir(), "domination-dashboard-failed.png")
				if os.WriteFile(path, png, 0o644) == nil {
					b.t.Logf("screenshot of the failure: %s", path)
				}
			}
		}
	}()
	testenv.WaitFor(b.t, what, within, func() bool {
		done, s := ok()
		seen = s
		return done
	})
}

func (b *browser) noPageErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		b.t.Errorf("the page raised errors: %s", strings.Join(b.errors, "; "))
	}
}

// The page's table as windowCount strings, its window count, its shadow
// totals by type and its health panel.
const (
	jsVisitorRows = `[...document.querySelectorAll('#visitors-table tbody tr')].map(tr =>
		tr.dataset.account + '/' + (tr.dataset.nullStore ? 'null' : tr.dataset.store) + '/' + tr.dataset.from + '=' + tr.cells[3].textContent)`
	jsWindows      = `Number(document.getElementById('visitors-note').dataset.windows || 0)`
	jsShadowTotals = `Object.fromEntries([...document.querySelectorAll('#shadow-totals tbody tr')].map(tr => [tr.dataset.type, Number(tr.cells[1].textContent)]))`
	jsHealth       = `(() => {
		const row = document.querySelector('#stages tr[data-stage="clickhouse:shadow"]');
		const sum = document.getElementById('health-summary');
		return {summary: sum.textContent, summaryStalled: sum.classList.contains('stalled'),
			row: row ? row.textContent : '', rowStalled: !!(row && row.classList.contains('stalled')),
			stalledRows: document.querySelectorAll('#stages tr.stalled').length};
	})()`
)

type health struct {
	Summary        string `json:"summary"`
	SummaryStalled bool   `json:"summaryStalled"`
	Row            string `json:"row"`
	RowStalled     bool   `json:"rowStalled"`
	StalledRows    int    `json:"stalledRows"`
}

// latestWindows is the newest window of each (account, store) in
// active_visitors FINAL, as windowCount strings, sorted; account 0 means
// every account.
func (e *env) latestWindows(account int64) []string {
	e.t.Helper()
	rows, err := e.conn.Query(context.Background(), "SELECT account_id, store_id, toUInt32(window_start), count FROM "+e.database+".active_visitors FINAL")
	if err != nil {
		e.t.Fatalf("read active_visitors: %v", err)
	}
	defer rows.Close()
	type key struct {
		account int64
		store   string
		null    bool
	}
	type win struct {
		store *string
		start uint32
		count uint64
	}
	latest := map[key]win{}
	for rows.Next() {
		var w win
		var a int64
		if err := rows.Scan(&a, &w.store, &w.start, &w.count); err != nil {
			e.t.Fatal(err)
		}
		if account != 0 && a != account {
			continue
		}
		k := key{account: a, null: w.store == nil}
		if w.store != nil {
			k.store = *w.store
		}
		if cur, ok := latest[k]; !ok || w.start > cur.start {
			latest[k] = w
		}
	}
	var out []string
	for k, w := range latest {
		out = append(out, windowCount(k.account, w.store, int64(w.start), w.count))
	}
	sort.Strings(out)
	return out
}

// shadowByType counts shadow FINAL by type, every type present, plus the
// total, as the page's totals table shows them.
func (e *env) shadowByType() map[string]uint64 {
	e.t.Helper()
	out := map[string]uint64{"Incompatible": 0, "Sha": 0, "Dow": 0, "ShaDow": 0, "total": 0}
	rows, err := e.conn.Query(context.Background(), "SELECT toString(type), count() FROM "+e.database+".shadow FINAL GROUP BY type")
	if err != nil {
		e.t.Fatalf("read shadow: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var n uint64
		if err := rows.Scan(&typ, &n); err != nil {
			e.t.Fatal(err)
		}
		out[typ] = n
		out["total"] += n
	}
	return out
}

// workerStatus is the worker's GET /status.
func (w *worker) status() status.Report {
	w.t.Helper()
	res, err := http.Get(w.url("/status"))
	if err != nil {
		w.t.Fatalf("get /status: %v", err)
	}
	defer res.Body.Close()
	var r status.Report
	if res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			w.t.Fatalf("decode /status: %v", err)
		}
	}
	return r
}

func sortedRows(b *browser) []string {
	rows := eval[[]string](b, jsVisitorRows)
	sort.Strings(rows)
	return rows
}

func TestDashboardShowsWhatClickHouseHoldsFiltersByAccountAndShowsAStall(t *testing.T) {
	b := newBrowser(t) // first: without chromium, fail before any work
	e := newEnv(t)
	e.migrateUp()
	w := e.startWorker("--window", fmt.Sprintf("%ds", visitWindow), "--grace", "1s", "--stall-after", "5s")
	testenv.WaitFor(t, "the worker ready", 30*time.Second, w.ready)

	const ratings, visits = 1000, 900
	const refused = 20 // out of range: dead-lettered
	e.cli("produce", "ratings", "--count", fmt.Sprint(ratings), "--seed", "41")
	e.cli("produce", "ratings", "--count", fmt.Sprint(refused), "--min", "101", "--max", "120", "--seed", "41")
	e.cli(visitArgs(visits, 41)...)
	windows := e.offlineWindows(visits, visitWindow)
	testenv.WaitFor(t, "every window in active_visitors", 90*time.Second, func() bool { return len(e.storedWindows()) >= len(windows) })
	testenv.WaitFor(t, "every rating in shadow", 90*time.Second, func() bool { return e.count("SELECT count() FROM shadow FINAL") == ratings })

	b.do("open the dashboard", chromedp.Navigate(w.url("/")), chromedp.WaitVisible(chromedp.CSS("#visitors-table tbody tr")))

	// The counts shown are what ClickHouse holds: each key's newest
	// window, every window received, the shadow events by type.
	want := e.latestWindows(0)
	var got []string
	b.waitFor("the table to show each key's newest window: "+strings.Join(want, ","), time.Minute, func() (bool, string) {
		got = sortedRows(b)
		return strings.Join(got, ",") == strings.Join(want, ","), strings.Join(got, ",")
	})
	if n := eval[int](b, jsWindows); n != len(windows) {
		t.Errorf("the page received %d windows; ClickHouse holds %d", n, len(windows))
	}
	wantShadow := e.shadowByType()
	if wantShadow["total"] != ratings {
		t.Fatalf("shadow holds %v, want %d ratings in all", wantShadow, ratings)
	}
	var gotShadow map[string]uint64
	b.waitFor(fmt.Sprint("the shadow totals to equal ClickHouse's ", wantShadow), time.Minute, func() (bool, string) {
		gotShadow = eval[map[string]uint64](b, jsShadowTotals)
		return fmt.Sprint(gotShadow) == fmt.Sprint(wantShadow), fmt.Sprint(gotShadow, " ", eval[string](b, `document.getElementById('shadow-updated').textContent`))
	})
	bars := eval[int](b, `document.querySelectorAll('#shadow-chart rect').length`)
	lines := eval[int](b, `document.querySelectorAll('#visitors-chart polyline').length`)
	if bars == 0 || lines != 3 {
		t.Errorf("the charts have %d shadow bars and %d visitor lines, want some bars and a line per account (3)", bars, lines)
	}
	var h health
	b.waitFor("the health panel to show no stall once drained", time.Minute, func() (bool, string) {
		h = eval[health](b, jsHealth)
		return strings.HasPrefix(h.Summary, "No stage is stalled") && h.StalledRows == 0, fmt.Sprintf("%+v", h)
	})
	b.waitFor("the dead letters by reason", 30*time.Second, func() (bool, string) {
		n := eval[string](b, fmt.Sprintf(`(r => r ? r.cells[2].textContent : '')(document.querySelector('#dead-letters tr[data-topic=%q][data-reason="out_of_range"]'))`, e.dlq))
		return n == fmt.Sprint(refused), n
	})
	b.screenshot("dashboard-desktop.png")
	b.do("phone width", chromedp.EmulateViewport(390, 844))
	if overflow := eval[bool](b, `document.documentElement.scrollWidth > window.innerWidth`); overflow {
		t.Errorf("at 390 px the page scrolls sideways (%d px wide)", eval[int](b, `document.documentElement.scrollWidth`))
	}
	b.screenshot("dashboard-phone.png")
	b.do("desktop width", chromedp.EmulateViewport(1280, 900))

	// The filter: the feed sends account 2's history again, and only its
	// rows remain.
	b.do("filter account 2", chromedp.SetValue(chromedp.CSS("#account"), "2"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('account').dispatchEvent(new Event('change'))`))
	wantTwo := e.latestWindows(2)
	if len(wantTwo) == 0 {
		t.Fatal("account 2 has no window in ClickHouse")
	}
	b.waitFor("only account 2's rows: "+strings.Join(wantTwo, ","), 30*time.Second, func() (bool, string) {
		got = sortedRows(b)
		return strings.Join(got, ",") == strings.Join(wantTwo, ","), strings.Join(got, ",")
	})
	for _, r := range sortedRows(b) {
		if !strings.HasPrefix(r, "2/") {
			t.Errorf("the filtered table shows %s", r)
		}
	}
	b.do("clear the filter", chromedp.Evaluate[chromedp.Void](
		`(s => { s.selectedIndex = 0; s.dispatchEvent(new Event('change')); })(document.getElementById('account'))`))
	b.waitFor("every account's rows again", 30*time.Second, func() (bool, string) {
		got = sortedRows(b)
		return strings.Join(got, ",") == strings.Join(want, ","), strings.Join(got, ",")
	})

	// A stall: the shadow store's view detached while ratings wait.
	attach := e.detachShadowStore()
	const more = 100
	e.cli("produce", "ratings", "--count", fmt.Sprint(more), "--seed", "42")
	var where string
	testenv.WaitFor(t, "the worker's /status to report clickhouse:shadow stalled", 2*time.Minute, func() bool {
		s := stageOf(t, w.status(), "clickhouse:shadow")
		if !s.Stalled || s.Stall == nil {
			return false
		}
		where = fmt.Sprintf("at partition %d offset %d", s.Stall.Partition, s.Stall.Offset)
		return true
	})
	b.waitFor("the health panel to show the stall "+where, 30*time.Second, func() (bool, string) {
		h = eval[health](b, jsHealth)
		return h.SummaryStalled && h.RowStalled && strings.Contains(h.Row, "STALLED "+where) &&
			strings.Contains(h.Summary, "clickhouse:shadow (table shadow) "+where), fmt.Sprintf("%+v", h)
	})
	b.screenshot("dashboard-stalled.png")

	// Recovery: the view back, the stall clears and the totals follow.
	attach()
	testenv.WaitFor(t, "every rating in shadow", 90*time.Second, func() bool { return e.count("SELECT count() FROM shadow FINAL") == ratings+more })
	wantShadow = e.shadowByType()
	b.waitFor(fmt.Sprint("the page to clear the stall and show the new totals ", wantShadow), 90*time.Second, func() (bool, string) {
		h = eval[health](b, jsHealth)
		gotShadow = eval[map[string]uint64](b, jsShadowTotals)
		return !h.SummaryStalled && h.StalledRows == 0 && fmt.Sprint(gotShadow) == fmt.Sprint(wantShadow), fmt.Sprintf("%+v %v", h, gotShadow)
	})
	b.noPageErrors()
}

func TestDashboardWithTokensLoadsThePageAndShowsAScopedTokenOnlyItsAccounts(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t)
	e.migrateUp()
	const scoped = "dashboard-scoped-token-1"
	w := e.startWorkerEnv(append(e.environ(), "DOMINATION_WEB_TOKENS=viewer "+scoped+" accounts=1"),
		"--window", fmt.Sprintf("%ds", visitWindow), "--grace", "1s")
	const visits = 600
	e.cli(visitArgs(visits, 43)...)
	windows := e.offlineWindows(visits, visitWindow)
	testenv.WaitFor(t, "every window in active_visitors", 90*time.Second, func() bool { return len(e.storedWindows()) >= len(windows) })

	b.do("open the dashboard without a token", chromedp.Navigate(w.url("/")), chromedp.WaitVisible(chromedp.CSS("#token-form")))
	b.do("give the token", chromedp.SendKeys(chromedp.CSS("#token"), scoped), chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	wantOne := e.latestWindows(1)
	var got []string
	b.waitFor("account 1's rows only: "+strings.Join(wantOne, ","), time.Minute, func() (bool, string) {
		got = sortedRows(b)
		return strings.Join(got, ",") == strings.Join(wantOne, ","),
			strings.Join(got, ",") + " message: " + eval[string](b, `document.getElementById('message').textContent`) +
				" feed: " + eval[string](b, `document.body.dataset.feed || ''`)
	})
	if opts := eval[[]string](b, `[...document.querySelectorAll('#account option')].map(o => o.value)`); strings.Join(opts, ",") != ",1" {
		t.Errorf("the account filter offers %q, want all and 1", opts)
	}
	b.waitFor("the health panel with the token", 30*time.Second, func() (bool, string) {
		n := eval[int](b, `document.querySelectorAll('#stages tbody tr').length`)
		return n == 5, fmt.Sprint(n, " stages")
	})
	if auth := eval[string](b, `document.body.dataset.auth || ''`); auth != "" {
		t.Errorf("the page still asks for a token: %q", auth)
	}

	// A filter outside the token's accounts: the feed closes with 4403,
	// the page says so and goes back to the accounts the token covers.
	b.do("filter account 2", chromedp.Evaluate[chromedp.Void](`(s => {
		const o = document.createElement('option'); o.value = '2'; o.textContent = '2'; s.append(o);
		s.value = '2'; s.dispatchEvent(new Event('change'));
	})(document.getElementById('account'))`))
	b.waitFor("the page to report the refusal and show account 1 again", 30*time.Second, func() (bool, string) {
		msg := eval[string](b, `document.getElementById('message').textContent`)
		got = sortedRows(b)
		filter := eval[string](b, `document.getElementById('account').value`)
		return strings.Contains(msg, "showing every account it covers") && filter == "" &&
			strings.Join(got, ",") == strings.Join(wantOne, ","), fmt.Sprintf("message %q, filter %q, rows %s", msg, filter, strings.Join(got, ","))
	})
	b.noPageErrors()
}
