package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// scaleResult is the query-at-scale part: the stores bulk-loaded, sealed
// by a worker, then each query timed through `domination query` against
// the same answer read with FINAL and a plain read without it.
type scaleResult struct {
	Database    string  `json:"database"`
	Ratings     int64   `json:"ratings"`
	Windows     int64   `json:"windows"`
	Redelivered float64 `json:"redelivered_fraction"`
	Days        int     `json:"days"`
	// LoadSeconds is the bulk load, MergeSeconds the wait for ClickHouse's
	// merges to settle after it, SealSeconds from the worker's start until
	// every minute ended a minute before the load's end was sealed.
	LoadSeconds  float64      `json:"load_seconds"`
	MergeSeconds float64      `json:"merge_seconds"`
	SealSeconds  float64      `json:"seal_seconds"`
	Queries      []scaleQuery `json:"queries"`
	Error        string       `json:"error,omitempty"`
	Runs         int          `json:"runs"`
}

// scaleQuery is one query's medians, in seconds, and whether domination's
// answer equals FINAL's.
type scaleQuery struct {
	Name       string  `json:"name"`
	Args       string  `json:"args"`
	Rows       int     `json:"rows"`
	Domination float64 `json:"domination_seconds"`
	// Before is the same command of an earlier build (BENCH_DOMINATION_BEFORE),
	// when given: the product as it read everything with FINAL.
	Before      float64 `json:"before_seconds,omitempty"`
	BeforeExact bool    `json:"before_exact,omitempty"`
	Final       float64 `json:"final_seconds"`
	Plain       float64 `json:"plain_seconds"`
	Exact       bool    `json:"exact"`
	Mismatch    string  `json:"mismatch,omitempty"`
}

// scaleShape is a query of the part: the command's arguments, and the
// statement that gives the same answer with FINAL (%s: FINAL or nothing;
// times are unix seconds), printing the same columns as TabSeparated.
type scaleShape struct {
	name  string
	args  []string
	final string
}

func (b *bench) scale(ctx context.Context) {
	res := &scaleResult{Ratings: b.cfg.scaleRows, Windows: b.cfg.scaleWindows, Redelivered: scaleRedelivered, Days: scaleDays, Runs: max(b.cfg.runs, 3)}
	b.rep.Scale = res
	if err := b.scaleRun(ctx, res); err != nil {
		res.Error = err.Error()
		logf("query at scale: %v", err)
	}
}

// Shape of the load: scaleDays of data ending at the load's start, a
// fraction re-delivered (the same rows inserted again).
const (
	scaleDays        = 30
	scaleRedelivered = 0.01
)

func (b *bench) scaleRun(ctx context.Context, res *scaleResult) error {
	id := b.cfg.prefix + "-scale"
	db := strings.ReplaceAll(b.cfg.prefix, "-", "_") + "_scale"
	res.Database = db
	in, shadow, dlq, av := id+"-in", id+"-shadow", id+"-dlq", id+"-av"
	others := []string{id + "-visits", id + "-vdlq", id + "-rep"}
	group, chGroup := id+"-group", id+"-clickhouse"
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if _, err := b.clickhouse(cctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			logf("query at scale: drop database %s: %v", db, err)
		}
		b.admin.deleteTopics(cctx, append([]string{in, shadow, dlq, av}, others...)...)
		b.admin.deleteGroups(cctx, group, group+"-visits", group+"-visits-windows", chGroup, chGroup+"-av")
	}()
	global := []string{"--kafka-brokers", strings.Join(b.cfg.brokers, ","), "--clickhouse-addr", b.cfg.chAddr, "--clickhouse-database", db,
		"--ratings-topic", in, "--shadow-topic", shadow, "--ratings-dlq-topic", dlq,
		"--visits-topic", others[0], "--active-visitors-topic", av, "--visits-dlq-topic", others[1]}
	migrate := append(slices.Clone(global), "migrate", "up", "--shadow-consumer-group", chGroup, "--active-visitors-consumer-group", chGroup+"-av")
	if b.cfg.chKafkaBrokers != "" {
		migrate = append(migrate, "--clickhouse-kafka-brokers", b.cfg.chKafkaBrokers)
	}
	logf("query at scale: migrate up into database %s", db)
	if err := b.runDomination(ctx, b.cfg.work+"/"+id+"-migrate.log", migrate...); err != nil {
		return err
	}

	// The bulk load: the same tables the Kafka engine's views fill, by
	// INSERT … SELECT, so the arrival counters' views run on it as they do
	// on ingestion. Ratings are spread evenly over the days before end,
	// windows likewise (10-second windows of as few keys as it takes, each
	// key's spread over the days).
	end := time.Now().UTC().Truncate(time.Minute)
	start := end.Add(-scaleDays * 24 * time.Hour)
	span := int64(end.Sub(start).Seconds())
	n, w := b.cfg.scaleRows, b.cfg.scaleWindows
	windows := span / 10
	keys := max(1, (w+windows-1)/windows)
	perKey := (w + keys - 1) / keys // windows of each key, spread over the span
	every := int64(1 / scaleRedelivered)
	shadowInsert := func(where string) string {
		return fmt.Sprintf("INSERT INTO %s.shadow (type, unique_id, emit_timestamp, rating)"+
			" SELECT multiIf(r %% 15 = 0, 'ShaDow', r %% 3 = 0, 'Sha', r %% 5 = 0, 'Dow', 'Incompatible'), concat('r', toString(number)),"+
			" toDateTime(%d + intDiv(number * %d, %d)), toInt32(r)"+
			" FROM (SELECT number, 1 + (number * 7919) %% 100 AS r FROM numbers(%d))%s", db, start.Unix(), span, n, n, where)
	}
	visitsInsert := func(where string) string {
		return fmt.Sprintf("INSERT INTO %s.active_visitors (account_id, store_id, window_start, window_end, count)"+
			" SELECT toInt64(intDiv(k, 4)), if(k %% 4 = 0, NULL, toString(k %% 4)), toDateTime(%d + ws), toDateTime(%d + ws + 10), toUInt64(1 + number %% 50)"+
			" FROM (SELECT number, number %% %d AS k, intDiv(intDiv(intDiv(number, %d) * %d, %d), 10) * 10 AS ws FROM numbers(%d))%s",
			db, start.Unix(), start.Unix(), keys, keys, span, perKey, w, where)
	}
	redelivered := fmt.Sprintf(" WHERE number %% %d = 7", every)
	t := time.Now()
	for _, q := range []string{shadowInsert(""), shadowInsert(redelivered), visitsInsert(""), visitsInsert(redelivered)} {
		logf("query at scale: %s", q[:min(len(q), 60)]+"…")
		if _, err := b.clickhouse(ctx, q); err != nil {
			return fmt.Errorf("bulk load: %w", err)
		}
	}
	res.LoadSeconds = time.Since(t).Seconds()
	logf("query at scale: loaded %d ratings and %d windows (+%.0f%% again) in %.1f s", n, w, 100*scaleRedelivered, res.LoadSeconds)
	t = time.Now()
	if err := b.waitMerges(ctx, db); err != nil {
		return err
	}
	res.MergeSeconds = time.Since(t).Seconds()

	// The maintenance: a worker of the load's own, as in production, until
	// every minute up to a minute before end is sealed in both stores.
	port, err := freePort()
	if err != nil {
		return err
	}
	argv := append([]string{b.cfg.domination}, global...)
	argv = append(argv, "worker", "--web-host", "127.0.0.1", "--web-port", strconv.Itoa(port),
		"--shadow-group", group, "--visits-group", group+"-visits", "--repartition-topic", others[2], "-l", "info")
	p, err := spawn("domination", argv, b.cfg.dominationEnv, b.cfg.work+"/"+id+"-worker.log")
	if err != nil {
		return err
	}
	defer p.stop(20 * time.Second)
	sealedBy := end.Add(-time.Minute).Unix()
	deadline := time.Now().Add(max(b.cfg.timeout, 15*time.Minute))
	for {
		if gone, err := p.exited(); gone {
			return fmt.Errorf("worker exited (%v):\n%s", err, p.tail(15))
		}
		left, err := b.unsealed(ctx, db, sealedBy)
		if err == nil && left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d minutes still unsealed after %s (%v)", left, time.Since(p.start).Round(time.Second), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	res.SealSeconds = time.Since(p.start).Seconds()
	p.stop(20 * time.Second)
	logf("query at scale: sealed %.1f s after the worker started", res.SealSeconds)

	// The queries, with absolute bounds so that every reader sees the same
	// range, each with a partial minute at its start as "--since 30d" has.
	since := func(d time.Duration) int64 { return end.Add(-d).Unix() + 17 }
	s30, s24, s7 := since(scaleDays*24*time.Hour), since(24*time.Hour), since(7*24*time.Hour)
	shapes := []scaleShape{
		{"query shadow --since 30d", []string{"shadow", "--since", fmt.Sprint(s30)},
			fmt.Sprintf("SELECT toString(type), count() AS n FROM %s.shadow %%s WHERE emit_timestamp >= toDateTime(%d) GROUP BY type ORDER BY n DESC, type", db, s30)},
		{"query shadow --since 30d --by day", []string{"shadow", "--since", fmt.Sprint(s30), "--by", "day"},
			fmt.Sprintf("SELECT toUnixTimestamp(toStartOfDay(emit_timestamp)) AS b, toString(type), count() FROM %s.shadow %%s WHERE emit_timestamp >= toDateTime(%d) GROUP BY b, type ORDER BY b, type", db, s30)},
		{"query shadow --by minute --since 24h", []string{"shadow", "--since", fmt.Sprint(s24), "--by", "minute"},
			fmt.Sprintf("SELECT toUnixTimestamp(toStartOfMinute(emit_timestamp)) AS b, toString(type), count() FROM %s.shadow %%s WHERE emit_timestamp >= toDateTime(%d) GROUP BY b, type ORDER BY b, type", db, s24)},
		{"query active-visitors --since 7d", []string{"active-visitors", "--since", fmt.Sprint(s7)},
			fmt.Sprintf("SELECT account_id, store_id, toUnixTimestamp(window_start), toUnixTimestamp(window_end), count FROM %s.active_visitors %%s WHERE window_start >= toDateTime(%d) ORDER BY window_start, account_id, store_id", db, s7)},
	}
	for _, sh := range shapes {
		q := scaleQuery{Name: sh.name, Args: strings.Join(sh.args, " ")}
		var dom, before, fin, plain []float64
		var got, gotBefore, want string
		for i := 0; i < res.Runs; i++ { // interleaved, so a busy moment hits every reader alike
			out, took, err := b.queryRows(ctx, b.cfg.domination, global, sh.args)
			if err != nil {
				return fmt.Errorf("%s: %w", sh.name, err)
			}
			dom = append(dom, took)
			if b.cfg.dominationBefore != "" {
				out, took, err := b.queryRows(ctx, b.cfg.dominationBefore, global, sh.args)
				if err != nil {
					return fmt.Errorf("%s with %s: %w", sh.name, b.cfg.dominationBefore, err)
				}
				before, gotBefore = append(before, took), out
			}
			t := time.Now()
			f, err := b.clickhouse(ctx, fmt.Sprintf(sh.final, "FINAL"))
			if err != nil {
				return fmt.Errorf("%s with FINAL: %w", sh.name, err)
			}
			fin = append(fin, time.Since(t).Seconds())
			t = time.Now()
			if _, err := b.clickhouse(ctx, fmt.Sprintf(sh.final, "")); err != nil {
				return fmt.Errorf("%s without FINAL: %w", sh.name, err)
			}
			plain = append(plain, time.Since(t).Seconds())
			got, want = out, f
		}
		q.Domination, q.Final, q.Plain = median(dom), median(fin), median(plain)
		if len(before) > 0 {
			q.Before, q.BeforeExact = median(before), gotBefore == want
		}
		q.Rows = strings.Count(want, "\n")
		q.Exact = got == want
		if !q.Exact {
			q.Mismatch = firstDifference(got, want)
		}
		logf("query at scale: %s: %.3f s (FINAL %.3f s, plain %.3f s), %d rows, exact %v", sh.name, q.Domination, q.Final, q.Plain, q.Rows, q.Exact)
		res.Queries = append(res.Queries, q)
	}
	return nil
}

// queryRows runs `domination query … --format csv`, timing the command
// alone, and prints its rows as the FINAL statements do (TabSeparated,
// times as unix seconds, NULL as \N), for comparison.
func (b *bench) queryRows(ctx context.Context, binary string, global, args []string) (string, float64, error) {
	argv := append(slices.Clone(global), "query")
	argv = append(argv, args...)
	argv = append(argv, "--format", "csv")
	t := time.Now()
	out, err := exec.CommandContext(ctx, binary, argv...).Output()
	took := time.Since(t).Seconds()
	if err != nil {
		return "", 0, err
	}
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil || len(rows) == 0 {
		return "", 0, fmt.Errorf("parse %q: %v", lastLines(string(out), 3), err)
	}
	var sb strings.Builder
	for _, r := range rows[1:] { // after the header
		for i, v := range r {
			if i > 0 {
				sb.WriteByte('\t')
			}
			switch tm, terr := time.Parse(time.RFC3339, v); {
			case rows[0][i] == "store_id" && v == "":
				sb.WriteString(`\N`) // the bench's stores are never ''
			case terr == nil:
				sb.WriteString(strconv.FormatInt(tm.Unix(), 10))
			default:
				sb.WriteString(v)
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String(), took, nil
}

func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d: domination %q, FINAL %q (%d and %d lines)", i+1, a, b, len(g), len(w))
		}
	}
	return ""
}

// unsealed counts the minutes before (unix seconds) of either store whose
// arrival count no seal names.
func (b *bench) unsealed(ctx context.Context, db string, before int64) (int64, error) {
	var total int64
	for _, st := range [][2]string{{"shadow_arrivals", "shadow_minutes"}, {"active_visitors_arrivals", "active_visitors_seals"}} {
		out, err := b.clickhouse(ctx, fmt.Sprintf("SELECT count() FROM (SELECT minute, sum(arrived) AS arrived FROM %[1]s.%[2]s WHERE minute < toDateTime(%[4]d) GROUP BY minute) AS a"+
			" ANY LEFT JOIN (SELECT minute, any(arrived) AS s, toUInt8(1) AS h FROM %[1]s.%[3]s FINAL GROUP BY minute) AS b USING minute WHERE h = 0 OR s != arrived", db, st[0], st[1], before))
		if err != nil {
			return -1, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		if err != nil {
			return -1, err
		}
		total += n
	}
	return total, nil
}

// waitMerges waits until ClickHouse runs no merge in db, for at most
// five minutes: the load leaves many parts, and merging them would
// compete with the queries for the cores.
func (b *bench) waitMerges(ctx context.Context, db string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		out, err := b.clickhouse(ctx, fmt.Sprintf("SELECT count() FROM system.merges WHERE database = '%s'", db))
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == "0" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	logf("query at scale: merges still running after five minutes; timing anyway")
	return nil
}

func (r *report) printScale(w io.Writer) {
	s := r.Scale
	if s == nil {
		return
	}
	fmt.Fprintf(w, "\n4. Query at scale: %s ratings and %s windows over %d days, %.0f%% re-delivered, bulk-loaded into the stores (INSERT … SELECT FROM numbers())\n",
		commas(float64(s.Ratings)), commas(float64(s.Windows)), s.Days, 100*s.Redelivered)
	fmt.Fprintf(w, "   load %.1f s, merges settled %.1f s, worker start → sealed %.1f s. Median of %d interleaved runs per reader, seconds.\n", s.LoadSeconds, s.MergeSeconds, s.SealSeconds, s.Runs)
	fmt.Fprintf(w, "   domination and before: the whole command, --format csv (before: BENCH_DOMINATION_BEFORE, a build that read everything with FINAL); FINAL and no FINAL: the statement alone over HTTP.\n\n")
	if s.Error != "" {
		fmt.Fprintf(w, "   failed: %s\n", indent(s.Error))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "query\trows\tdomination s\tbefore s\tFINAL s\tvs FINAL\tno FINAL (inexact) s\texact\t")
	for _, q := range s.Queries {
		before := "-"
		if q.Before > 0 {
			before = fmt.Sprintf("%.3f", q.Before)
			if !q.BeforeExact {
				before += " (differs)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%s\t%.3f\t%.1f×\t%.3f\t%v\t\n", q.Name, commas(float64(q.Rows)), q.Domination, before, q.Final, q.Final/q.Domination, q.Plain, q.Exact)
	}
	tw.Flush()
	for _, q := range s.Queries {
		if q.Mismatch != "" {
			fmt.Fprintf(w, "   %s differs from FINAL: %s\n", q.Name, q.Mismatch)
		}
	}
}

func (r *report) scaleTargets(add func(name, want, got string, met *bool)) {
	for _, t := range []struct {
		name string
		max  float64
	}{{"query shadow --since 30d", 0.5}, {"query shadow --since 30d --by day", 0.7}} {
		title := fmt.Sprintf("%s over %s rows, exact", t.name, commas(float64(r.cfg.scaleRows)))
		want := fmt.Sprintf("≤ %.1f s", t.max)
		var q *scaleQuery
		if r.Scale != nil {
			for i := range r.Scale.Queries {
				if r.Scale.Queries[i].Name == t.name {
					q = &r.Scale.Queries[i]
				}
			}
		}
		if q == nil {
			add(title, want, "not measured", nil)
			continue
		}
		met := q.Exact && q.Domination <= t.max
		add(title, want, fmt.Sprintf("%.3f s (FINAL %.3f s), exact %v", q.Domination, q.Final, q.Exact), &met)
	}
}
