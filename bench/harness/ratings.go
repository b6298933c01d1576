package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ratingsRun is one contender draining one preloaded ratings topic.
type ratingsRun struct {
	Contender string `json:"contender"`
	Run       int    `json:"run"`
	Messages  int64  `json:"messages"`
	// StartupSeconds: process start until the group first committed.
	StartupSeconds float64 `json:"startup_seconds"`
	// DrainSeconds: first commit until every input offset was committed.
	DrainSeconds float64 `json:"drain_seconds"`
	// WallSeconds: process start until drained.
	WallSeconds float64 `json:"wall_seconds"`
	// MessagesPerSecond: messages committed after the first commit, over
	// DrainSeconds (start-up excluded).
	MessagesPerSecond float64 `json:"messages_per_second"`
	// CPUSecondsPerMillion: CPU seconds of the process tree over the same
	// window, per million messages.
	CPUSecondsPerMillion float64 `json:"cpu_seconds_per_million"`
	// CPUSecondsTotal: process start until drained, start-up included.
	CPUSecondsTotal float64 `json:"cpu_seconds_total"`
	PeakRSSBytes    int64   `json:"peak_rss_bytes"`
	// ServiceCores and BackgroundCores are the mean cores used, over the
	// drain, by the broker, ClickHouse and the harness together, and by
	// everything else on the machine besides the contender (other people's
	// programs): background load makes a run less trustworthy.
	ServiceCores    float64 `json:"service_cores"`
	BackgroundCores float64 `json:"background_cores"`
	OutputRecords   int64   `json:"output_records"`
	DLQRecords      int64   `json:"dlq_records"`
	Error           string  `json:"error,omitempty"`
}

// ratings runs every contender cfg.runs times, interleaved.
func (b *bench) ratings(ctx context.Context) {
	for run := 1; run <= b.cfg.runs; run++ {
		for _, name := range b.cfg.contenders {
			if ctx.Err() != nil {
				return
			}
			r := b.ratingsOnce(ctx, name, run)
			if r.Error != "" {
				logf("ratings %s run %d: %s", name, run, firstLine(r.Error))
			} else {
				logf("ratings %s run %d: %d msgs, %.0f msg/s, %.2f CPU s/M, peak RSS %.0f MB, wall %.2fs, services %.2f cores, background %.2f cores",
					name, run, r.Messages, r.MessagesPerSecond, r.CPUSecondsPerMillion, mb(r.PeakRSSBytes), r.WallSeconds, r.ServiceCores, r.BackgroundCores)
			}
			b.rep.addRatings(r)
		}
	}
}

func (b *bench) ratingsOnce(ctx context.Context, name string, run int) ratingsRun {
	n := b.cfg.ratings
	if name == "faust" {
		n = b.cfg.faustRatings
	}
	id := fmt.Sprintf("%s-r%d-%s", b.cfg.prefix, run, name)
	in, out, dlq, group := id+"-in", id+"-out", id+"-dlq", id+"-group"
	res := ratingsRun{Contender: name, Run: run, Messages: n}
	fail := func(err error) ratingsRun {
		res.Error = err.Error()
		return res
	}
	// domination's worker also runs the visits agents; they get topics of
	// their own, idle during this run, created (like every topic) before
	// the contender starts so that no one measures topic creation.
	extraTopics := []string{id + "-visits", id + "-av", id + "-vdlq", id + "-rep"}
	groups := []string{group, group + "-visits", group + "-visits-windows"}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		b.admin.deleteTopics(cctx, append([]string{in, out, dlq}, extraTopics...)...)
		b.admin.deleteGroups(cctx, groups...)
	}()

	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, t := range []struct {
		name       string
		partitions int
	}{{in, 4}, {out, 4}, {dlq, 1}, {id + "-visits", 4}, {id + "-rep", 4}, {id + "-av", 1}, {id + "-vdlq", 1}} {
		if err := b.admin.createTopic(tctx, t.name, t.partitions, nil); err != nil {
			return fail(err)
		}
	}
	if err := b.preloadRatings(ctx, in, n, filepath.Join(b.cfg.work, id+"-preload.log")); err != nil {
		return fail(err)
	}
	ends, err := b.admin.endOffsets(ctx, in, 4)
	if err != nil {
		return fail(err)
	}
	if _, total := progress(nil, ends); total != n {
		return fail(fmt.Errorf("preload: the input holds %d records, want %d", total, n))
	}

	argv, env, err := b.ratingsCommand(name, in, out, dlq, group, id)
	if err != nil {
		return fail(err)
	}
	var prof profiling
	if name == "domination" {
		env = append(env, b.cfg.dominationEnv...)
	}
	if name == "domination" && run == 1 {
		argv, env = b.profiled(argv, env, &prof, "ratings")
	}
	if name == "passthrough" && run == 1 && b.cfg.profile {
		path := filepath.Join(b.cfg.results, b.cfg.prefix+"-passthrough.cpu.pprof")
		argv = append(argv, "-cpuprofile", path)
		b.rep.note("profiled run (its figures include the profiler's overhead): go tool pprof -top %s", path)
	}
	p, err := spawn(name, argv, env, filepath.Join(b.cfg.work, id+".log"))
	if err != nil {
		return fail(err)
	}
	defer p.stop(20 * time.Second)
	d, err := b.watchDrain(ctx, p, []drainTarget{{group: group, topic: in, ends: ends}})
	if err != nil {
		return fail(err)
	}
	res.ServiceCores, res.BackgroundCores = d.load()
	b.collect(p, prof)
	res.StartupSeconds = d.first.at.Sub(p.start).Seconds()
	res.DrainSeconds = d.last.at.Sub(d.first.at).Seconds()
	res.WallSeconds = d.last.at.Sub(p.start).Seconds()
	if res.DrainSeconds > 0 {
		res.MessagesPerSecond = float64(n-d.firstDone) / res.DrainSeconds
		res.CPUSecondsPerMillion = (d.last.cpu - d.first.cpu) / (float64(n-d.firstDone) / 1e6)
	} else { // drained between two polls: fall back to the whole run
		res.MessagesPerSecond = float64(n) / res.WallSeconds
		res.CPUSecondsPerMillion = d.last.cpu / (float64(n) / 1e6)
	}
	res.CPUSecondsTotal = d.last.cpu
	res.PeakRSSBytes = p.sample.peak()
	// Outputs are acknowledged before their input is committed, so they
	// are all there now; allow a moment for a slow metadata refresh.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res.OutputRecords, err = b.admin.records(ctx, out, 4)
		if res.OutputRecords >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fail(fmt.Errorf("count the output records: %w", err))
	}
	if res.DLQRecords, err = b.admin.records(ctx, dlq, 1); err != nil {
		return fail(fmt.Errorf("count the dead letters: %w", err))
	}
	if res.OutputRecords < n {
		res.Error = fmt.Sprintf("output topic holds %d records, want at least %d", res.OutputRecords, n)
	}
	return res
}

// ratingsCommand returns how to start a ratings contender.
func (b *bench) ratingsCommand(name, in, out, dlq, group, id string) (argv, env []string, err error) {
	brokers := strings.Join(b.cfg.brokers, ",")
	switch name {
	case "domination":
		port, err := freePort()
		if err != nil {
			return nil, nil, err
		}
		argv := []string{b.cfg.domination, "--kafka-brokers", brokers, "--clickhouse-addr", b.cfg.chAddr,
			"--ratings-topic", in, "--shadow-topic", out, "--ratings-dlq-topic", dlq,
			"--visits-topic", id + "-visits", "--active-visitors-topic", id + "-av", "--visits-dlq-topic", id + "-vdlq",
			"worker", "--web-host", "127.0.0.1", "--web-port", strconv.Itoa(port),
			"--shadow-group", group, "--visits-group", group + "-visits", "--repartition-topic", id + "-rep", "-l", "warn"}
		return append(argv, b.cfg.dominationArgs...), nil, nil
	case "goka":
		return []string{b.cfg.goka, "-brokers", brokers, "-group", group, "-input", in, "-output", out, "-dlq", dlq}, nil, nil
	case "passthrough":
		return append([]string{b.cfg.passthrough, "-brokers", brokers, "-group", group, "-input", in, "-output", out}, b.cfg.passthroughArgs...), nil, nil
	case "faust":
		dir := filepath.Join(b.cfg.work, id+"-faust")
		return []string{b.cfg.python, filepath.Join(b.cfg.bench, "peers", "faust", "app.py"), "worker", "-l", "warn"},
			[]string{"BENCH_BROKER=" + brokers, "BENCH_GROUP=" + group, "BENCH_INPUT=" + in, "BENCH_OUTPUT=" + out,
				"BENCH_DLQ=" + dlq, "BENCH_DATADIR=" + dir}, nil
	}
	return nil, nil, fmt.Errorf("unknown contender %q", name)
}

// preloadRatings fills topic with n ratings from `domination produce
// ratings --seed 1`: every contender reads the same message bytes.
func (b *bench) preloadRatings(ctx context.Context, topic string, n int64, logPath string) error {
	return b.runDomination(ctx, logPath, "--kafka-brokers", strings.Join(b.cfg.brokers, ","), "--ratings-topic", topic,
		"produce", "ratings", "--count", strconv.FormatInt(n, 10), "--seed", "1")
}

// runDomination runs the binary to completion, output to logPath.
func (b *bench) runDomination(ctx context.Context, logPath string, args ...string) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, b.cfg.domination, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("domination %s: %w\n%s", strings.Join(args, " "), err, lastLines(string(out), 10))
	}
	return nil
}

// drainTarget is a group that must commit a topic up to its end offsets.
// When ends is nil they are read at every poll (a topic still growing).
type drainTarget struct {
	group, topic string
	partitions   int
	ends         map[int]int64
}

// drain is what watchDrain saw: the first poll with any committed offset
// and the first poll with everything committed.
type drain struct {
	first, last usage
	firstDone   int64
	// firstMachine and lastMachine are the machine's readings at first and
	// last.
	firstMachine, lastMachine machine
}

// load returns the mean cores used between first and last by the
// services, and by everything but the services and the contender.
func (d drain) load() (services, background float64) {
	secs := d.last.at.Sub(d.first.at).Seconds()
	if secs <= 0 {
		return 0, 0
	}
	svc := d.lastMachine.services - d.firstMachine.services
	busy := d.lastMachine.busy - d.firstMachine.busy
	contender := d.last.cpu - d.first.cpu
	return svc / secs, max(busy-svc-contender, 0) / secs
}

// watchDrain polls the targets' committed offsets every 50ms until all
// are complete, the contender exits, or cfg.timeout passes.
func (b *bench) watchDrain(ctx context.Context, p *proc, targets []drainTarget) (drain, error) {
	var d drain
	deadline := time.NewTimer(b.cfg.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if gone, err := p.exited(); gone {
			return d, fmt.Errorf("%s exited before draining (%v):\n%s", p.name, err, p.tail(15))
		}
		var done, total int64
		var perr error
		for _, t := range targets {
			parts := t.partitions
			if parts == 0 {
				parts = len(t.ends)
			}
			ends := t.ends
			if ends == nil {
				if ends, perr = b.admin.endOffsets(ctx, t.topic, parts); perr != nil {
					break
				}
			}
			c, err := b.admin.committed(ctx, t.group, t.topic, parts)
			if err != nil {
				perr = err
				break
			}
			dn, tt := progress(c, ends)
			done, total = done+dn, total+tt
		}
		if perr == nil {
			u := p.sample.now()
			m := readMachine(b.services)
			if done > 0 && d.first.at.IsZero() {
				d.first, d.firstDone, d.firstMachine = u, done, m
			}
			if done >= total && total > 0 {
				d.last, d.lastMachine = u, m
				return d, nil
			}
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-deadline.C:
			return d, fmt.Errorf("%s did not drain within %s (committed %d of %d; last poll error: %v):\n%s",
				p.name, b.cfg.timeout, done, total, perr, p.tail(15))
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// profiling names the profiles of one run ("" when not profiling).
type profiling struct{ cpu, heap string }

// profiled switches a domination command to the profiling variant when
// cfg.profile is set.
func (b *bench) profiled(argv, env []string, prof *profiling, what string) ([]string, []string) {
	if !b.cfg.profile {
		return argv, env
	}
	base := filepath.Join(b.cfg.results, b.cfg.prefix+"-"+what)
	prof.cpu, prof.heap = base+".cpu.pprof", base+".heap.pprof"
	argv = append([]string{b.cfg.dominationPprof}, argv[1:]...)
	return argv, append(env, "BENCH_CPUPROFILE="+prof.cpu, "BENCH_HEAPPROFILE="+prof.heap)
}

// collect ends a profiled run's profiles and notes where they are.
func (b *bench) collect(p *proc, prof profiling) {
	if prof.cpu == "" {
		return
	}
	if err := p.profiled(prof.cpu); err != nil {
		b.rep.note("profile: %v", err)
		return
	}
	b.rep.note("profiled run (its figures include the profiler's overhead): go tool pprof -top %s (heap: %s)", prof.cpu, prof.heap)
}
