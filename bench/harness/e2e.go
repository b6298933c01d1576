package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/domination/domination/wire"
)

// e2eResult is the end-to-end run: a preloaded backlog to ClickHouse, then
// latency at a steady rate, through one worker.
type e2eResult struct {
	Ratings  int64  `json:"ratings"`
	Database string `json:"database"`
	// DrainedSeconds: worker start until every preloaded rating's offset
	// was committed.
	DrainedSeconds float64 `json:"drained_seconds"`
	// QueryableSeconds: worker start until `domination query shadow`
	// counted every preloaded rating.
	QueryableSeconds   float64  `json:"queryable_seconds"`
	WorkerPeakRSSBytes int64    `json:"worker_peak_rss_bytes"`
	Latency            *latency `json:"latency,omitempty"`
	// SoloLatency is the same steady load through a fresh worker with no
	// ClickHouse reading its output; PassthroughLatency through the
	// pass-through baseline.
	SoloLatency        *latency `json:"solo_latency,omitempty"`
	PassthroughLatency *latency `json:"passthrough_latency,omitempty"`
	Error              string   `json:"error,omitempty"`
}

// latency is the steady-rate run. Every rating's produce time is the
// harness's clock just before the WriteMessages call that sends it.
type latency struct {
	Rate    int     `json:"rate"`
	Seconds float64 `json:"seconds"`
	Sent    int64   `json:"sent"`
	// Missing ratings never reached the shadow topic within the wait.
	Missing int64 `json:"missing"`
	// ToShadow: until the broker appended the shadow event (the topic uses
	// LogAppendTime, so the record's timestamp is the broker's clock).
	ToShadow dist `json:"produce_to_shadow_ms"`
	// ToShadowReceived: until the harness's consumer of the shadow topic
	// received it (adds that consumer's fetch wait).
	ToShadowReceived dist `json:"produce_to_shadow_received_ms"`
	// ToInput: until the broker appended the rating to the input topic
	// (the harness's producer: kafka-go, acks=all, 1ms batches).
	ToInput dist `json:"produce_to_input_ms"`
	// Agent: from the input's append to the shadow event's append, the
	// part the worker is responsible for.
	Agent dist `json:"input_to_shadow_ms"`
	// ToClickHouse: for one probe rating every 100ms, until a poll of the
	// shadow table (every 100ms) returned it.
	ToClickHouse dist `json:"produce_to_queryable_ms"`
}

// dist summarises latencies in milliseconds.
type dist struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func distOf(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	slices.Sort(ds)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return float64(ds[max(i, 0)]) / float64(time.Millisecond)
	}
	return dist{Count: len(ds), P50: q(0.50), P99: q(0.99), Max: q(1)}
}

func (b *bench) endToEnd(ctx context.Context) {
	res := &e2eResult{Ratings: b.cfg.e2eRatings}
	b.rep.EndToEnd = res
	if err := b.e2e(ctx, res); err != nil {
		res.Error = err.Error()
		logf("end to end: %s", firstLine(res.Error))
	}
}

func (b *bench) e2e(ctx context.Context, res *e2eResult) error {
	id := b.cfg.prefix + "-e2e"
	db := strings.ReplaceAll(b.cfg.prefix, "-", "_") + "_e2e"
	res.Database = db
	in, shadow, dlq, av := id+"-in", id+"-shadow", id+"-dlq", id+"-av"
	others := []string{id + "-visits", id + "-vdlq", id + "-rep"}
	group, chGroup := id+"-group", id+"-clickhouse"
	brokers := strings.Join(b.cfg.brokers, ",")
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		// Drop the Kafka engine tables before their topics go.
		drop := "DROP DATABASE IF EXISTS " + db
		if b.cfg.chCluster != "" {
			drop += " ON CLUSTER " + b.cfg.chCluster
		}
		if _, err := b.clickhouse(cctx, drop); err != nil {
			logf("end to end: drop database %s: %v", db, err)
		}
		b.admin.deleteTopics(cctx, append([]string{in, shadow, dlq, av}, others...)...)
		b.admin.deleteGroups(cctx, group, group+"-visits", group+"-visits-windows", chGroup, chGroup+"-av")
	}()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Both topics stamp records with the broker's append time, so the
	// latency to each is read from the records themselves. (The agent's
	// emit_timestamp, the input's timestamp, is then its append time too.)
	for _, t := range []string{in, shadow} {
		if err := b.admin.createTopic(tctx, t, 4, map[string]string{"message.timestamp.type": "LogAppendTime"}); err != nil {
			return err
		}
	}
	flags := func(chAddr string) []string {
		return []string{"--kafka-brokers", brokers, "--clickhouse-addr", chAddr, "--clickhouse-database", db,
			"--ratings-topic", in, "--shadow-topic", shadow, "--ratings-dlq-topic", dlq,
			"--visits-topic", others[0], "--active-visitors-topic", av, "--visits-dlq-topic", others[1]}
	}
	// On a cluster, migrate through the first server, ON CLUSTER; the
	// worker and the queries get every server, as the README runs them.
	global := flags(b.cfg.chAddr)
	first, _, _ := strings.Cut(b.cfg.chAddr, ",")
	migrate := append(flags(first), "migrate", "up", "--shadow-consumer-group", chGroup, "--active-visitors-consumer-group", chGroup+"-av")
	if b.cfg.chKafkaBrokers != "" {
		migrate = append(migrate, "--clickhouse-kafka-brokers", b.cfg.chKafkaBrokers)
	}
	if b.cfg.chCluster != "" {
		migrate = append(migrate, "--cluster", b.cfg.chCluster)
	}
	logf("end to end: migrate up into database %s on %s", db, first)
	if err := b.runDomination(ctx, filepath.Join(b.cfg.work, id+"-migrate.log"), migrate...); err != nil {
		return err
	}
	n := b.cfg.e2eRatings
	logf("end to end: preloading %d ratings", n)
	if err := b.preloadRatings(ctx, in, n, filepath.Join(b.cfg.work, id+"-preload.log")); err != nil {
		return err
	}
	ends, err := b.admin.endOffsets(tctx, in, 4)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	argv := append([]string{b.cfg.domination}, global...)
	argv = append(argv, "worker", "--web-host", "127.0.0.1", "--web-port", strconv.Itoa(port),
		"--shadow-group", group, "--visits-group", group+"-visits", "--repartition-topic", others[2], "-l", "warn")
	argv = append(argv, b.cfg.dominationArgs...)
	p, err := spawn("domination", argv, b.cfg.dominationEnv, filepath.Join(b.cfg.work, id+".log"))
	if err != nil {
		return err
	}
	defer p.stop(20 * time.Second)

	deadline := time.Now().Add(b.cfg.timeout)
	for res.QueryableSeconds == 0 {
		if gone, err := p.exited(); gone {
			return fmt.Errorf("worker exited (%v):\n%s", err, p.tail(15))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ClickHouse did not hold all %d ratings within %s", n, b.cfg.timeout)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(250 * time.Millisecond)
		if res.DrainedSeconds == 0 {
			if c, err := b.admin.committed(ctx, group, in, 4); err == nil {
				if done, total := progress(c, ends); done >= total {
					res.DrainedSeconds = time.Since(p.start).Seconds()
				}
			}
		}
		got, err := b.queryShadowTotal(ctx, global)
		if err != nil {
			logf("end to end: query shadow: %v", err)
			continue
		}
		if got >= n {
			res.QueryableSeconds = time.Since(p.start).Seconds()
			if res.DrainedSeconds == 0 {
				res.DrainedSeconds = res.QueryableSeconds
			}
		}
	}
	logf("end to end: %d ratings queryable %.2fs after the worker started (committed after %.2fs)", n, res.QueryableSeconds, res.DrainedSeconds)

	// Let ClickHouse and the broker finish with the backlog (merges, log
	// flushes) before measuring latency.
	time.Sleep(settle)
	lat, err := b.steadyLatency(ctx, in, shadow, db)
	res.Latency = lat
	res.WorkerPeakRSSBytes = p.sample.peak()
	p.stop(20 * time.Second)
	if err != nil {
		return err
	}
	// The same load through a worker alone (no ClickHouse reading its
	// output) and through the pass-through, to tell the agent's latency
	// from the machine's.
	for _, name := range []string{"domination", "passthrough"} {
		if !slices.Contains(b.cfg.contenders, name) {
			continue
		}
		l, err := b.soloLatency(ctx, id, name)
		if err != nil {
			b.rep.note("%s latency run without ClickHouse: %v", name, err)
			continue
		}
		if name == "domination" {
			res.SoloLatency = l
		} else {
			res.PassthroughLatency = l
		}
	}
	return nil
}

// settle is the pause before a latency measurement.
const settle = 5 * time.Second

// soloLatency runs the steady load through a fresh worker or the
// pass-through, with nothing else reading their output.
func (b *bench) soloLatency(ctx context.Context, id, name string) (*latency, error) {
	id = id + "-solo-" + name
	in, out, group := id+"-in", id+"-out", id+"-group"
	others := []string{id + "-dlq", id + "-visits", id + "-av", id + "-vdlq", id + "-rep"}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		b.admin.deleteTopics(cctx, append([]string{in, out}, others...)...)
		b.admin.deleteGroups(cctx, group, group+"-visits", group+"-visits-windows")
	}()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, t := range []string{in, out} {
		if err := b.admin.createTopic(tctx, t, 4, map[string]string{"message.timestamp.type": "LogAppendTime"}); err != nil {
			return nil, err
		}
	}
	argv := append([]string{b.cfg.passthrough, "-brokers", strings.Join(b.cfg.brokers, ","), "-group", group, "-input", in, "-output", out}, b.cfg.passthroughArgs...)
	if name == "domination" {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		argv = []string{b.cfg.domination, "--kafka-brokers", strings.Join(b.cfg.brokers, ","), "--clickhouse-addr", b.cfg.chAddr,
			"--ratings-topic", in, "--shadow-topic", out, "--ratings-dlq-topic", others[0],
			"--visits-topic", others[1], "--active-visitors-topic", others[2], "--visits-dlq-topic", others[3],
			"worker", "--web-host", "127.0.0.1", "--web-port", strconv.Itoa(port),
			"--shadow-group", group, "--visits-group", group + "-visits", "--repartition-topic", others[4], "-l", "warn"}
		argv = append(argv, b.cfg.dominationArgs...)
	}
	var env []string
	if name == "domination" {
		env = b.cfg.dominationEnv
	}
	p, err := spawn(name, argv, env, filepath.Join(b.cfg.work, id+".log"))
	if err != nil {
		return nil, err
	}
	defer p.stop(20 * time.Second)
	// Wait until the group owns the partitions (one record through).
	w := &kafka.Writer{Addr: kafka.TCP(b.cfg.brokers...), RequiredAcks: kafka.RequireAll}
	defer w.Close()
	if err := w.WriteMessages(tctx, kafka.Message{Topic: in, Key: []byte("warm-up"), Value: wire.AppendRating(nil, wire.Rating{Rating: 1, UniqueID: []byte("warm-up")})}); err != nil {
		return nil, err
	}
	for {
		n, err := b.admin.records(tctx, out, 4)
		if err == nil && n > 0 {
			break
		}
		if tctx.Err() != nil {
			return nil, fmt.Errorf("%s did not start: %w", name, tctx.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(settle)
	logf("end to end: the same steady load through %s alone", name)
	return b.steadyLatency(ctx, in, out, "")
}

// queryShadowTotal runs `domination query shadow --format json` and adds
// up the counts.
func (b *bench) queryShadowTotal(ctx context.Context, global []string) (int64, error) {
	args := append(slices.Clone(global), "query", "shadow", "--since", "24h", "--format", "json")
	out, err := exec.CommandContext(ctx, b.cfg.domination, args...).Output()
	if err != nil {
		return 0, err
	}
	var rows []struct {
		Count int64 `json:"count"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		return 0, fmt.Errorf("parse %q: %w", lastLines(string(out), 3), err)
	}
	var total int64
	for _, r := range rows {
		total += r.Count
	}
	return total, nil
}

// clickhouse runs one statement over ClickHouse's HTTP interface.
func (b *bench) clickhouse(ctx context.Context, query string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.cfg.chHTTP+"/", strings.NewReader(query))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// steadyLatency produces cfg.rate ratings/s for cfg.steady into in while
// the worker runs, and measures how long each takes to reach shadow and,
// for probes, the ClickHouse table.
// With db empty there are no ClickHouse probes.
func (b *bench) steadyLatency(ctx context.Context, in, shadow, db string) (*latency, error) {
	lat := &latency{Rate: b.cfg.rate, Seconds: b.cfg.steady.Seconds()}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Read both topics from their current ends: the input to learn when
	// each rating was appended, shadow to learn when its event was.
	consume := map[string]map[int32]kgo.Offset{}
	for _, t := range []string{in, shadow} {
		start, err := b.admin.endOffsets(tctx, t, 4)
		if err != nil {
			return lat, err
		}
		consume[t] = map[int32]kgo.Offset{}
		for part, o := range start {
			consume[t][int32(part)] = kgo.NewOffset().At(o)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.cfg.brokers...), kgo.ConsumePartitions(consume), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return lat, err
	}
	defer cl.Close()

	type seen struct{ appended, received time.Time }
	var mu sync.Mutex
	arrived := map[string]seen{}            // on shadow
	inputAppended := map[string]time.Time{} // on the input topic
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	var consumer sync.WaitGroup
	consumer.Add(1)
	go func() {
		defer consumer.Done()
		for cctx.Err() == nil {
			fs := cl.PollFetches(cctx)
			now := time.Now()
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				uid := uniqueID(r.Value)
				switch {
				case uid == "":
				case r.Topic == in:
					inputAppended[uid] = r.Timestamp
				default:
					arrived[uid] = seen{appended: r.Timestamp, received: now}
				}
			})
			mu.Unlock()
		}
	}()

	// Probes: one rating per 100ms, polled in ClickHouse every 100ms.
	type probe struct {
		uid      string
		produced time.Time
		found    time.Time
	}
	var probes []*probe
	var pmu sync.Mutex
	pctx, stopPoller := context.WithCancel(ctx)
	defer stopPoller()
	var poller sync.WaitGroup
	poller.Add(1)
	go func() {
		defer poller.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
			pmu.Lock()
			var ids []string
			for _, pr := range probes {
				if pr.found.IsZero() {
					ids = append(ids, "'"+pr.uid+"'")
				}
			}
			pmu.Unlock()
			if len(ids) == 0 {
				continue
			}
			q := fmt.Sprintf("SELECT unique_id FROM %s.shadow WHERE unique_id IN (%s) FORMAT TabSeparated", db, strings.Join(ids, ","))
			out, err := b.clickhouse(pctx, q)
			now := time.Now()
			if err != nil {
				continue
			}
			got := map[string]bool{}
			for _, l := range strings.Split(out, "\n") {
				got[l] = true
			}
			pmu.Lock()
			for _, pr := range probes {
				if pr.found.IsZero() && got[pr.uid] {
					pr.found = now
				}
			}
			pmu.Unlock()
		}
	}()

	w := &kafka.Writer{
		Addr:         kafka.TCP(b.cfg.brokers...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1000,
		BatchTimeout: time.Millisecond,
	}
	defer w.Close()
	logf("end to end: steady %d ratings/s for %s", b.cfg.rate, b.cfg.steady)
	produced := map[string]time.Time{}
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	begin := time.Now()
	nextProbe := begin
	tick := time.NewTicker(5 * time.Millisecond)
	var sent int64
	total := int64(b.cfg.steady.Seconds() * float64(b.cfg.rate))
	for sent < total {
		now := time.Now()
		due := min(int64(now.Sub(begin).Seconds()*float64(b.cfg.rate)), total) - sent
		if due > 0 {
			msgs := make([]kafka.Message, due)
			for i := range msgs {
				uid := randomUUID(rng)
				v := wire.AppendRating(nil, wire.Rating{Rating: int64(1 + rng.IntN(100)), UniqueID: []byte(uid)})
				msgs[i] = kafka.Message{Topic: in, Key: []byte(uid), Value: v, Time: now}
				produced[uid] = now
			}
			if db != "" && !now.Before(nextProbe) {
				pmu.Lock()
				probes = append(probes, &probe{uid: string(msgs[0].Key), produced: now})
				pmu.Unlock()
				nextProbe = nextProbe.Add(100 * time.Millisecond)
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				tick.Stop()
				return lat, fmt.Errorf("steady produce: %w", err)
			}
			sent += due
		}
		select {
		case <-ctx.Done():
			tick.Stop()
			return lat, ctx.Err()
		case <-tick.C:
		}
	}
	tick.Stop()
	lat.Sent = sent
	logf("end to end: sent %d; waiting for shadow and ClickHouse", sent)

	// Wait up to 60s for every rating on shadow and every probe in ClickHouse.
	wait := time.Now().Add(60 * time.Second)
	for time.Now().Before(wait) && ctx.Err() == nil {
		mu.Lock()
		all := len(arrived) >= len(produced)
		mu.Unlock()
		pmu.Lock()
		found := 0
		for _, pr := range probes {
			if !pr.found.IsZero() {
				found++
			}
		}
		pmu.Unlock()
		if all && found == len(probes) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopPoller()
	poller.Wait()
	stopConsumer()
	consumer.Wait()

	var toShadow, received, toCH, toInput, agent []time.Duration
	mu.Lock()
	for uid, at := range produced {
		s, ok := arrived[uid]
		if !ok {
			lat.Missing++
			continue
		}
		toShadow = append(toShadow, s.appended.Sub(at))
		received = append(received, s.received.Sub(at))
		if ia, ok := inputAppended[uid]; ok {
			toInput = append(toInput, ia.Sub(at))
			agent = append(agent, s.appended.Sub(ia))
		}
	}
	mu.Unlock()
	lat.ToInput, lat.Agent = distOf(toInput), distOf(agent)
	for _, pr := range probes {
		if !pr.found.IsZero() {
			toCH = append(toCH, pr.found.Sub(pr.produced))
		}
	}
	lat.ToShadow, lat.ToShadowReceived, lat.ToClickHouse = distOf(toShadow), distOf(received), distOf(toCH)
	if len(toCH) < len(probes) {
		b.rep.note("%d of %d ClickHouse probes were not queryable within the wait", len(probes)-len(toCH), len(probes))
	}
	logf("end to end: p50/p99 produce→output %.1f/%.1f ms", lat.ToShadow.P50, lat.ToShadow.P99)
	if db != "" {
		logf("end to end: p50/p99 produce→queryable in ClickHouse %.0f/%.0f ms", lat.ToClickHouse.P50, lat.ToClickHouse.P99)
	}
	return lat, nil
}

// anyRating decodes the ratings of every contender, whatever its range.
var anyRating = wire.RatingLimits{MinRating: math.MinInt64, MaxRating: math.MaxInt64}

// uniqueID is the unique_id of a shadow event, or of a rating (an input, or
// a pass-through's copy of one); "" for any other record.
func uniqueID(v []byte) string {
	if s, err := wire.DecodeShadow(v); err == nil {
		return string(s.UniqueID)
	}
	if r, err := wire.DecodeRating(v, anyRating); err == nil {
		return string(r.UniqueID)
	}
	return ""
}

func randomUUID(r *rand.Rand) string {
	a, c := r.Uint64(), r.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xfff, 0x8000|(c>>48)&0x3fff, c&0xffffffffffff)
}
