package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report gathers every figure; print writes the table, write the JSON.
type report struct {
	cfg            config
	Started        time.Time        `json:"started"`
	Prefix         string           `json:"prefix"`
	Machine        map[string]any   `json:"machine"`
	Settings       map[string]any   `json:"settings"`
	RatingsRuns    []ratingsRun     `json:"ratings_runs"`
	Ratings        []ratingsSummary `json:"ratings"`
	VisitsRuns     []visitsRun      `json:"visits_runs"`
	Visits         *visitsSummary   `json:"visits,omitempty"`
	EndToEnd       *e2eResult       `json:"end_to_end,omitempty"`
	Scale          *scaleResult     `json:"query_at_scale,omitempty"`
	Targets        []target         `json:"targets"`
	Notes          []string         `json:"notes"`
	FinishedSecond float64          `json:"elapsed_seconds"`
}

// ratingsSummary is the median over a contender's successful runs, and
// its ratios to domination's medians (contender ÷ domination).
type ratingsSummary struct {
	Contender            string  `json:"contender"`
	Messages             int64   `json:"messages_per_run"`
	Runs                 int     `json:"runs_ok"`
	Failed               int     `json:"runs_failed"`
	MessagesPerSecond    float64 `json:"messages_per_second"`
	CPUSecondsPerMillion float64 `json:"cpu_seconds_per_million"`
	PeakRSSBytes         int64   `json:"peak_rss_bytes"`
	MaxPeakRSSBytes      int64   `json:"max_peak_rss_bytes"`
	StartupSeconds       float64 `json:"startup_seconds"`
	WallSeconds          float64 `json:"wall_seconds"`
	BackgroundCores      float64 `json:"background_cores"`
	ThroughputVsDom      float64 `json:"throughput_vs_domination,omitempty"`
	CPUVsDom             float64 `json:"cpu_vs_domination,omitempty"`
	RSSVsDom             float64 `json:"rss_vs_domination,omitempty"`
	Error                string  `json:"error,omitempty"`
}

// target is one goal of the benchmark issue and whether it was met (nil:
// not measured in this invocation).
type target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  *bool  `json:"met"`
}

func newReport(cfg config) *report {
	host, _ := os.Hostname()
	return &report{
		cfg:     cfg,
		Started: time.Now().UTC(),
		Prefix:  cfg.prefix,
		Machine: map[string]any{"cores": runtime.NumCPU(), "host": host, "go": runtime.Version(), "kafka": strings.Join(cfg.brokers, ","), "clickhouse": cfg.chAddr, "topology": cfg.topology},
		Settings: map[string]any{
			"runs": cfg.runs, "ratings": cfg.ratings, "faust_ratings": cfg.faustRatings, "visits": cfg.visits,
			"e2e_ratings": cfg.e2eRatings, "steady_rate": cfg.rate, "steady_seconds": cfg.steady.Seconds(),
			"contenders": cfg.contenders, "run_timeout_seconds": cfg.timeout.Seconds(),
			"scale_rows": cfg.scaleRows, "scale_windows": cfg.scaleWindows,
		},
	}
}

func (r *report) addRatings(run ratingsRun) { r.RatingsRuns = append(r.RatingsRuns, run) }

func (r *report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func median[T int64 | float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// finish computes medians, ratios and the targets.
func (r *report) finish() {
	r.FinishedSecond = time.Since(r.Started).Seconds()
	for _, name := range r.cfg.contenders {
		s := ratingsSummary{Contender: name}
		var rate, cpu, start, wall, bg []float64
		var rss []int64
		for _, run := range r.RatingsRuns {
			if run.Contender != name {
				continue
			}
			s.Messages = run.Messages
			if run.Error != "" {
				s.Failed++
				if s.Error == "" {
					s.Error = run.Error
				}
				continue
			}
			s.Runs++
			rate, cpu, start, wall = append(rate, run.MessagesPerSecond), append(cpu, run.CPUSecondsPerMillion), append(start, run.StartupSeconds), append(wall, run.WallSeconds)
			rss = append(rss, run.PeakRSSBytes)
			bg = append(bg, run.BackgroundCores)
			s.MaxPeakRSSBytes = max(s.MaxPeakRSSBytes, run.PeakRSSBytes)
		}
		if s.Runs == 0 && s.Failed == 0 {
			continue
		}
		s.MessagesPerSecond, s.CPUSecondsPerMillion, s.StartupSeconds, s.WallSeconds = median(rate), median(cpu), median(start), median(wall)
		s.PeakRSSBytes = median(rss)
		s.BackgroundCores = median(bg)
		r.Ratings = append(r.Ratings, s)
	}
	dom := r.rating("domination")
	for i := range r.Ratings {
		s := &r.Ratings[i]
		if dom != nil && dom.Runs > 0 && s.Runs > 0 {
			s.ThroughputVsDom = s.MessagesPerSecond / dom.MessagesPerSecond
			s.CPUVsDom = s.CPUSecondsPerMillion / dom.CPUSecondsPerMillion
			s.RSSVsDom = float64(s.PeakRSSBytes) / float64(dom.PeakRSSBytes)
		}
	}
	r.targets()
	var worst float64
	for _, run := range r.RatingsRuns {
		worst = max(worst, run.BackgroundCores)
	}
	for _, run := range r.VisitsRuns {
		worst = max(worst, run.BackgroundCores)
	}
	if worst > 0.25 {
		r.note("other programs used up to %.2f of the %d cores during some runs (background cores): those figures are lower, and noisier, than on an idle machine", worst, runtime.NumCPU())
	}
}

func (r *report) rating(name string) *ratingsSummary {
	for i := range r.Ratings {
		if r.Ratings[i].Contender == name {
			return &r.Ratings[i]
		}
	}
	return nil
}

func (r *report) targets() {
	add := func(name, want, got string, met *bool) {
		r.Targets = append(r.Targets, target{Name: name, Want: want, Got: got, Met: met})
	}
	yes := func(b bool) *bool { return &b }
	dom := r.rating("domination")
	ok := dom != nil && dom.Runs > 0
	for _, peer := range []struct {
		name string
		want float64
	}{{"faust", 30}, {"goka", 1.5}, {"passthrough", 1.0}} {
		p := r.rating(peer.name)
		title := fmt.Sprintf("shadow agent msg/s vs %s", peer.name)
		want := fmt.Sprintf("≥ %g×", peer.want)
		switch {
		case !ok || p == nil:
			add(title, want, "not measured", nil)
		case p.Runs == 0:
			add(title, want, peer.name+" could not run", nil)
		default:
			x := dom.MessagesPerSecond / p.MessagesPerSecond
			add(title, want, fmt.Sprintf("%.2f×", x), yes(x >= peer.want))
		}
	}
	if ok {
		add("shadow agent ratings/s", "≥ 200,000", commas(dom.MessagesPerSecond), yes(dom.MessagesPerSecond >= 200_000))
		add("shadow agent CPU s per million", "≤ 2.0", fmt.Sprintf("%.2f", dom.CPUSecondsPerMillion), yes(dom.CPUSecondsPerMillion <= 2.0))
	} else {
		add("shadow agent ratings/s", "≥ 200,000", "not measured", nil)
		add("shadow agent CPU s per million", "≤ 2.0", "not measured", nil)
	}
	if v := r.Visits; v != nil && v.Runs > 0 {
		add("visits/s through repartition and windows", "≥ 400,000", commas(v.VisitsPerSecond), yes(v.VisitsPerSecond >= 400_000))
		add("visits agents CPU s per million visits", "≤ 3.0", fmt.Sprintf("%.2f", v.CPUSecondsPerMillion), yes(v.CPUSecondsPerMillion <= 3.0))
		add("visits worker peak RSS, every run", "≤ 120 MB", fmt.Sprintf("%.0f MB (max of %d runs)", mb(v.PeakRSSBytes), v.Runs), yes(v.PeakRSSBytes <= 120<<20))
	} else {
		add("visits/s through repartition and windows", "≥ 400,000", "not measured", nil)
		add("visits agents CPU s per million visits", "≤ 3.0", "not measured", nil)
		add("visits worker peak RSS, every run", "≤ 120 MB", "not measured", nil)
	}
	// Worker peak RSS in every run that ran a domination worker.
	var peak int64
	n := 0
	for _, run := range r.RatingsRuns {
		if run.Contender == "domination" && run.Error == "" {
			peak, n = max(peak, run.PeakRSSBytes), n+1
		}
	}
	for _, run := range r.VisitsRuns {
		if run.Error == "" {
			peak, n = max(peak, run.PeakRSSBytes), n+1
		}
	}
	if e := r.EndToEnd; e != nil && e.Error == "" {
		peak, n = max(peak, e.WorkerPeakRSSBytes), n+1
	}
	if n > 0 {
		add("worker peak RSS, every run", "≤ 150 MB", fmt.Sprintf("%.0f MB (max of %d runs)", mb(peak), n), yes(peak <= 150<<20))
	} else {
		add("worker peak RSS, every run", "≤ 150 MB", "not measured", nil)
	}
	if e := r.EndToEnd; e != nil && e.Latency != nil && e.Latency.ToShadow.Count > 0 {
		p99 := e.Latency.ToShadow.P99
		add(fmt.Sprintf("p99 produce→shadow at %d/s", r.cfg.rate), "≤ 100 ms", fmt.Sprintf("%.1f ms", p99), yes(p99 <= 100))
	} else {
		add(fmt.Sprintf("p99 produce→shadow at %d/s", r.cfg.rate), "≤ 100 ms", "not measured", nil)
	}
	r.scaleTargets(add)
}

func commas(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func ratio(x float64) string {
	if x == 0 {
		return "–"
	}
	if x < 0.1 {
		return fmt.Sprintf("%.3f×", x)
	}
	return fmt.Sprintf("%.2f×", x)
}

func (r *report) print(w io.Writer) {
	cfg := r.cfg
	fmt.Fprintf(w, "\ndomination benchmark %s — %d cores, %s topology, Kafka %s, ClickHouse %s (same machine)\n",
		r.Prefix, runtime.NumCPU(), cfg.topology, strings.Join(cfg.brokers, ","), cfg.chAddr)
	if len(r.Ratings) > 0 {
		fmt.Fprintf(w, "\n1. Ratings agent: consume dominate (4 partitions), classify, produce shadow (acks=all), commit after ack.\n")
		fmt.Fprintf(w, "   Median of %d runs per contender, run order interleaved; msg/s and CPU exclude start-up (first commit → all committed).\n\n", cfg.runs)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "contender\tmessages\tmsg/s\tvs dom\tCPU s/M msgs\tvs dom\tpeak RSS MB\tvs dom\tstart-up s\twall s\tbackground cores\truns ok\t")
		for _, s := range r.Ratings {
			if s.Runs == 0 {
				fmt.Fprintf(tw, "%s\t%s\tcould not run\t\t\t\t\t\t\t\t\t0/%d\t\n", s.Contender, commas(float64(s.Messages)), s.Failed)
				continue
			}
			name := s.Contender
			if s.Messages != cfg.ratings {
				name += "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%s\t%.0f\t%s\t%.2f\t%.2f\t%.2f\t%d/%d\t\n", name, commas(float64(s.Messages)),
				commas(s.MessagesPerSecond), ratio(s.ThroughputVsDom), s.CPUSecondsPerMillion, ratio(s.CPUVsDom),
				mb(s.PeakRSSBytes), ratio(s.RSSVsDom), s.StartupSeconds, s.WallSeconds, s.BackgroundCores, s.Runs, s.Runs+s.Failed)
		}
		tw.Flush()
		fmt.Fprintf(w, "   background cores: CPU used during the drain by programs other than the contender, the broker, ClickHouse and the harness.\n")
		for _, s := range r.Ratings {
			if s.Runs > 0 && s.Messages != cfg.ratings {
				fmt.Fprintf(w, "   * %s drained %s ratings per run (the others %s): a scaled input, its msg/s and CPU per million are measured on it.\n",
					s.Contender, commas(float64(s.Messages)), commas(float64(cfg.ratings)))
			}
			if s.Error != "" {
				fmt.Fprintf(w, "   %s: %d run(s) failed; first error: %s\n", s.Contender, s.Failed, indent(s.Error))
			}
		}
	}
	if v := r.Visits; v != nil {
		fmt.Fprintf(w, "\n2. Visits agents: %s visits over %d keys, visits → repartition (4 partitions) → %s-second tumbling windows → active-visitors.\n",
			commas(float64(cfg.visits)), v.Keys, commas(v.WindowSeconds))
		fmt.Fprintf(w, "   Median of %d runs.\n\n", v.Runs)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "stage\tvisits/s\tCPU s/M visits\tpeak RSS MB (max)\tseconds\tbackground cores\t")
		fmt.Fprintf(tw, "processed through both stages (start-up excluded)\t%s\t%.2f\t%.0f\t%.2f\t%.2f\t\n", commas(v.VisitsPerSecond), v.CPUSecondsPerMillion, mb(v.PeakRSSBytes), v.ProcessSeconds, v.BackgroundCores)
		fmt.Fprintf(tw, "until every offset committed (windows closed)\t%s\t\t\t%.2f\t\n", commas(v.DrainedVisitsPerSecond), v.DrainedSeconds)
		tw.Flush()
		fmt.Fprintf(w, "   windows emitted: %s; dead-lettered visits: %s; Faust's tumbling-window version: %s\n", commas(float64(v.WindowsEmitted)), commas(float64(v.DeadLettered)), v.Faust)
		if v.Error != "" {
			fmt.Fprintf(w, "   %d run(s) failed; first error: %s\n", v.Failed, indent(v.Error))
		}
	}
	if e := r.EndToEnd; e != nil {
		fmt.Fprintf(w, "\n3. End to end: ratings → worker → shadow → ClickHouse Kafka engine → shadow table (`domination query shadow`).\n\n")
		if e.Error != "" {
			fmt.Fprintf(w, "   failed: %s\n", indent(e.Error))
		}
		if e.QueryableSeconds > 0 {
			fmt.Fprintf(w, "   %s preloaded ratings: worker start → all committed %.2f s, → all queryable %.2f s (%s ratings/s end to end); worker peak RSS %.0f MB\n",
				commas(float64(e.Ratings)), e.DrainedSeconds, e.QueryableSeconds, commas(float64(e.Ratings)/e.QueryableSeconds), mb(e.WorkerPeakRSSBytes))
		}
		if l := e.Latency; l != nil {
			fmt.Fprintf(w, "\n   Latency at a steady %s ratings/s for %.0f s (%s sent):\n\n", commas(float64(l.Rate)), l.Seconds, commas(float64(l.Sent)))
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "path\tsamples\tp50 ms\tp99 ms\tmax ms\t")
			for _, row := range []struct {
				name string
				d    dist
			}{
				{"produce → shadow (broker log-append time)", l.ToShadow},
				{"produce → shadow (harness consumer receives)", l.ToShadowReceived},
				{"  of which produce → input appended", l.ToInput},
				{"  of which input appended → shadow appended (worker)", l.Agent},
				{"produce → queryable in ClickHouse (probes)", l.ToClickHouse},
			} {
				fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t\n", row.name, commas(float64(row.d.Count)), row.d.P50, row.d.P99, row.d.Max)
			}
			for _, solo := range []struct {
				name string
				l    *latency
			}{{"worker alone (no ClickHouse reading)", e.SoloLatency}, {"pass-through alone", e.PassthroughLatency}} {
				if solo.l == nil {
					continue
				}
				fmt.Fprintf(tw, "%s: produce → output appended\t%s\t%.1f\t%.1f\t%.1f\t\n", solo.name, commas(float64(solo.l.ToShadow.Count)), solo.l.ToShadow.P50, solo.l.ToShadow.P99, solo.l.ToShadow.Max)
				fmt.Fprintf(tw, "  of which input appended → output appended\t%s\t%.1f\t%.1f\t%.1f\t\n", commas(float64(solo.l.Agent.Count)), solo.l.Agent.P50, solo.l.Agent.P99, solo.l.Agent.Max)
			}
			tw.Flush()
			if l.Missing > 0 {
				fmt.Fprintf(w, "   %s ratings never reached shadow within the wait\n", commas(float64(l.Missing)))
			}
		}
	}
	r.printScale(w)
	if len(r.Targets) > 0 {
		fmt.Fprintf(w, "\nTargets\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range r.Targets {
			verdict := "not measured"
			if t.Met != nil {
				verdict = map[bool]string{true: "met", false: "MISSED"}[*t.Met]
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.Name, t.Want, t.Got, verdict)
		}
		tw.Flush()
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
	fmt.Fprintf(w, "\nelapsed %.0f s\n", r.FinishedSecond)
}

func indent(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n      ") }

func (r *report) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
