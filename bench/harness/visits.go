package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	visitAccounts = 100
	visitStores   = 9 // plus the null store: 100 × 10 = 1,000 keys
)

// visitsRun is one worker taking cfg.visits preloaded visits through the
// repartition topic and the windows.
type visitsRun struct {
	Run    int   `json:"run"`
	Visits int64 `json:"visits"`
	// StartupSeconds: process start until the visits group first committed.
	StartupSeconds float64 `json:"startup_seconds"`
	// ProcessSeconds: first commit until both stages had committed a batch
	// holding every record (domination_committed_total of the visits and
	// windows agents reach the input and repartition record counts).
	ProcessSeconds  float64 `json:"process_seconds"`
	VisitsPerSecond float64 `json:"visits_per_second"`
	// DrainedSeconds: first commit until the committed offsets of both
	// groups reach the ends of visits and the repartition topic. The
	// windows group commits a record only once its window has closed, so
	// this includes waiting for the last windows to close.
	DrainedSeconds         float64 `json:"drained_seconds"`
	DrainedVisitsPerSecond float64 `json:"drained_visits_per_second"`
	CPUSecondsPerMillion   float64 `json:"cpu_seconds_per_million"`
	PeakRSSBytes           int64   `json:"peak_rss_bytes"`
	// BackgroundCores: see ratingsRun, over the processing window.
	BackgroundCores    float64 `json:"background_cores"`
	RepartitionRecords int64   `json:"repartition_records"`
	WindowsEmitted     int64   `json:"windows_emitted"`
	DeadLettered       int64   `json:"dead_lettered"`
	Error              string  `json:"error,omitempty"`
}

// visitsSummary is the median of the successful visits runs (peak RSS: the
// largest).
type visitsSummary struct {
	Runs                   int     `json:"runs_ok"`
	Failed                 int     `json:"runs_failed"`
	Keys                   int     `json:"keys"`
	WindowSeconds          float64 `json:"window_seconds"`
	VisitsPerSecond        float64 `json:"visits_per_second"`
	ProcessSeconds         float64 `json:"process_seconds"`
	DrainedSeconds         float64 `json:"drained_seconds"`
	DrainedVisitsPerSecond float64 `json:"drained_visits_per_second"`
	CPUSecondsPerMillion   float64 `json:"cpu_seconds_per_million"`
	PeakRSSBytes           int64   `json:"peak_rss_bytes"`
	BackgroundCores        float64 `json:"background_cores"`
	WindowsEmitted         int64   `json:"windows_emitted"`
	DeadLettered           int64   `json:"dead_lettered"`
	Faust                  string  `json:"faust"`
	Error                  string  `json:"error,omitempty"`
}

func (b *bench) visits(ctx context.Context) {
	var runs []visitsRun
	for run := 1; run <= b.cfg.runs && ctx.Err() == nil; run++ {
		r := b.visitsOnce(ctx, run)
		if r.Error != "" {
			logf("visits run %d: %s", run, firstLine(r.Error))
		} else {
			logf("visits run %d: %.0f visits/s processed, drained after %.1fs, peak RSS %.0f MB, %d windows, %d dead-lettered, background %.2f cores",
				run, r.VisitsPerSecond, r.DrainedSeconds, mb(r.PeakRSSBytes), r.WindowsEmitted, r.DeadLettered, r.BackgroundCores)
		}
		runs = append(runs, r)
	}
	b.rep.VisitsRuns = runs
	s := &visitsSummary{Keys: visitAccounts * (visitStores + 1), WindowSeconds: 10,
		Faust: "skipped: a Faust tumbling-window table with a repartition step is a second application to write and tune; the ratings comparison is the like-for-like one"}
	var rate, proc, drained, drate, cpu, bg []float64
	var windows, dead []int64
	for _, r := range runs {
		if r.Error != "" {
			s.Failed++
			if s.Error == "" {
				s.Error = r.Error
			}
			continue
		}
		s.Runs++
		rate, proc, drained, drate, cpu = append(rate, r.VisitsPerSecond), append(proc, r.ProcessSeconds), append(drained, r.DrainedSeconds), append(drate, r.DrainedVisitsPerSecond), append(cpu, r.CPUSecondsPerMillion)
		windows, dead = append(windows, r.WindowsEmitted), append(dead, r.DeadLettered)
		bg = append(bg, r.BackgroundCores)
		s.PeakRSSBytes = max(s.PeakRSSBytes, r.PeakRSSBytes)
	}
	s.VisitsPerSecond, s.ProcessSeconds, s.DrainedSeconds, s.DrainedVisitsPerSecond, s.CPUSecondsPerMillion = median(rate), median(proc), median(drained), median(drate), median(cpu)
	s.WindowsEmitted, s.DeadLettered = median(windows), median(dead)
	s.BackgroundCores = median(bg)
	b.rep.Visits = s
}

func (b *bench) visitsOnce(ctx context.Context, run int) visitsRun {
	n := b.cfg.visits
	id := fmt.Sprintf("%s-v%d", b.cfg.prefix, run)
	visits, rep, av, vdlq, group := id+"-visits", id+"-rep", id+"-av", id+"-vdlq", id+"-group"
	res := visitsRun{Run: run, Visits: n}
	fail := func(err error) visitsRun {
		res.Error = err.Error()
		return res
	}
	ratingTopics := []string{id + "-in", id + "-out", id + "-dlq"}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		b.admin.deleteTopics(cctx, append([]string{visits, rep, av, vdlq}, ratingTopics...)...)
		b.admin.deleteGroups(cctx, group, group+"-windows", id+"-shadow")
	}()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, t := range []struct {
		name       string
		partitions int
	}{{visits, 4}, {rep, 4}, {av, 1}, {vdlq, 1}} {
		if err := b.admin.createTopic(tctx, t.name, t.partitions, nil); err != nil {
			return fail(err)
		}
	}
	args := []string{"--kafka-brokers", strings.Join(b.cfg.brokers, ","), "--visits-topic", visits,
		"produce", "visits", "--frequency", "inf", "--max-messages", strconv.FormatInt(n, 10), "--seed", "1"}
	for a := 1; a <= visitAccounts; a++ {
		args = append(args, "--account-id", strconv.Itoa(a))
	}
	for s := 1; s <= visitStores; s++ {
		args = append(args, "--store-id", "s"+strconv.Itoa(s))
	}
	if err := b.runDomination(ctx, filepath.Join(b.cfg.work, id+"-preload.log"), args...); err != nil {
		return fail(err)
	}
	ends, err := b.admin.endOffsets(ctx, visits, 4)
	if err != nil {
		return fail(err)
	}
	if _, total := progress(nil, ends); total != n {
		return fail(fmt.Errorf("preload: the visits topic holds %d records, want %d", total, n))
	}

	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	argv := []string{b.cfg.domination, "--kafka-brokers", strings.Join(b.cfg.brokers, ","),
		"--ratings-topic", ratingTopics[0], "--shadow-topic", ratingTopics[1], "--ratings-dlq-topic", ratingTopics[2],
		"--visits-topic", visits, "--active-visitors-topic", av, "--visits-dlq-topic", vdlq,
		"worker", "--web-host", "127.0.0.1", "--web-port", strconv.Itoa(port),
		"--shadow-group", id + "-shadow", "--visits-group", group, "--repartition-topic", rep, "-l", "warn"}
	argv = append(argv, b.cfg.dominationArgs...)
	var prof profiling
	env := b.cfg.dominationEnv
	if run == 1 {
		argv, env = b.profiled(argv, env, &prof, "visits")
	}
	p, err := spawn("domination", argv, env, filepath.Join(b.cfg.work, id+".log"))
	if err != nil {
		return fail(err)
	}
	defer p.stop(20 * time.Second)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)

	var first, processed usage
	var firstMachine machine
	var firstDone float64
	deadline := time.Now().Add(b.cfg.timeout)
	for {
		if gone, err := p.exited(); gone {
			return fail(fmt.Errorf("worker exited (%v):\n%s", err, p.tail(15)))
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("visits not drained within %s:\n%s", b.cfg.timeout, p.tail(15)))
		}
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
		m, err := scrape(ctx, metricsURL)
		if err != nil {
			continue // not serving yet
		}
		u := p.sample.now()
		cv, cw := m[`domination_committed_total{agent="visits"}`], m[`domination_committed_total{agent="windows"}`]
		if first.at.IsZero() && cv > 0 {
			first, firstDone, firstMachine = u, cv, readMachine(b.services)
		}
		if first.at.IsZero() {
			continue
		}
		if processed.at.IsZero() && cv >= float64(n) {
			if res.RepartitionRecords, err = b.admin.records(ctx, rep, 4); err == nil && cw >= float64(res.RepartitionRecords) {
				processed = u
				res.StartupSeconds = first.at.Sub(p.start).Seconds()
				res.ProcessSeconds = processed.at.Sub(first.at).Seconds()
				res.VisitsPerSecond = (float64(n) - firstDone) / res.ProcessSeconds
				res.CPUSecondsPerMillion = (processed.cpu - first.cpu) / ((float64(n) - firstDone) / 1e6)
				_, res.BackgroundCores = drain{first: first, last: processed, firstMachine: firstMachine, lastMachine: readMachine(b.services)}.load()
			}
		}
		if processed.at.IsZero() {
			continue
		}
		cvis, err1 := b.admin.committed(ctx, group, visits, 4)
		repEnds, err2 := b.admin.endOffsets(ctx, rep, 4)
		cwin, err3 := b.admin.committed(ctx, group+"-windows", rep, 4)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		d1, t1 := progress(cvis, ends)
		d2, t2 := progress(cwin, repEnds)
		if d1 >= t1 && d2 >= t2 {
			res.DrainedSeconds = u.at.Sub(first.at).Seconds()
			res.DrainedVisitsPerSecond = (float64(n) - firstDone) / res.DrainedSeconds
			break
		}
	}
	res.PeakRSSBytes = p.sample.peak()
	b.collect(p, prof)
	res.WindowsEmitted, _ = b.admin.records(ctx, av, 1)
	res.DeadLettered, _ = b.admin.records(ctx, vdlq, 1)
	return res
}

// scrapeClient asks for /metrics uncompressed: the harness scrapes 20 times a
// second, and gzipping each page cost the worker 2.5% of its CPU in the
// visits part (a profile, 2026-12-01), which Prometheus at its usual 15 s
// would not.
var scrapeClient = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 5 * time.Second}

// scrape reads the samples of a Prometheus text page, keyed by name and
// labels as written.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}
