// Command harness is domination's benchmark: it runs domination's agents
// and their peers (Faust, Goka, a kafka-go pass-through) on the same
// preloaded input against the real Kafka broker and ClickHouse, prints one
// table and writes the same figures as JSON under bench/results/.
//
// `make bench` builds everything and runs it (see bench/README.md). All
// settings come from BENCH_* environment variables, read here only.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is everything a benchmark run needs to know.
type config struct {
	// root is the repository; bench is root/bench.
	root, bench string
	// domination, passthrough, goka and python are the contenders'
	// executables.
	domination, passthrough, goka, python string
	// dominationBefore, when set, is an earlier build whose queries the
	// query-at-scale part times too (BENCH_DOMINATION_BEFORE).
	dominationBefore string
	// topology is "single" (one broker, one ClickHouse server) or
	// "cluster" (scripts/services/cluster.sh: three brokers, two
	// ClickHouse replicas); it sets the defaults of the addresses below and
	// of the topics' replication (BENCH_TOPOLOGY).
	topology string
	brokers  []string
	// chAddr is ClickHouse's native address (for the binary; on a cluster
	// every server, comma-separated), chHTTP its HTTP interface (for the
	// harness's polls), chKafkaBrokers the broker list as the ClickHouse
	// server reaches it.
	chAddr, chHTTP, chKafkaBrokers string
	// chCluster is the ClickHouse cluster the end-to-end database is
	// migrated on (`migrate up --cluster`), empty on a single server.
	chCluster string
	// runs is how many times each ratings contender drains its input.
	runs int
	// ratings is the input of every ratings contender but Faust, which
	// drains faustRatings (scaled).
	ratings, faustRatings int64
	visits                int64
	// e2eRatings are preloaded for the end-to-end run; then rate ratings/s
	// for steady, for the latency run.
	e2eRatings int64
	rate       int
	steady     time.Duration
	// parts and contenders select what runs.
	parts      map[string]bool
	contenders []string
	// scaleRows and scaleWindows are the ratings and windows bulk-loaded
	// for the query-at-scale part.
	scaleRows, scaleWindows int64
	// timeout bounds one contender run.
	timeout time.Duration
	// profile runs the first domination run of the ratings and visits
	// parts with dominationPprof, which writes CPU and heap profiles next
	// to the JSON.
	profile         bool
	dominationPprof string
	// dominationEnv is added to every domination worker's environment
	// (BENCH_DOMINATION_ENV, space-separated NAME=VALUE), for experiments
	// such as GOMEMLIMIT=100MiB or GOGC=50.
	dominationEnv []string
	// dominationArgs are added to every domination worker's command line
	// (BENCH_DOMINATION_ARGS, space-separated), e.g. "--max-wait 5ms".
	dominationArgs []string
	// passthroughArgs are added to the pass-through's command line
	// (BENCH_PASSTHROUGH_ARGS), e.g. "-max-wait 2ms".
	passthroughArgs []string
	// prefix names every topic, group and database of this invocation.
	prefix string
	// services is scripts/services' directory of data and pid files
	// (DOMINATION_SERVICES_DIR, as there).
	services string
	// work holds logs; results the JSON.
	work, results string
}

func loadConfig() (config, error) {
	wd, err := os.Getwd()
	if err != nil {
		return config{}, err
	}
	bench := env("BENCH_DIR", wd)
	root := filepath.Dir(bench)
	stamp := time.Now().UTC().Format("20060102t150405")
	topology := env("BENCH_TOPOLOGY", "single")
	// What scripts/services/up.sh starts for each topology (cluster.sh env).
	var def struct{ brokers, chAddr, chHTTP, chCluster, contenders string }
	switch topology {
	case "single":
		def.brokers, def.chAddr, def.chHTTP = "127.0.0.1:9092", "127.0.0.1:9000", "http://127.0.0.1:8123"
		def.contenders = "domination,goka,faust,passthrough"
	case "cluster":
		def.brokers = "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094"
		def.chAddr, def.chHTTP, def.chCluster = "127.0.0.1:29000,127.0.0.1:29001", "http://127.0.0.1:28123", "domination"
		// Faust is left out: at ~1,500 msg/s it says nothing new about
		// the topology (BENCH_CONTENDERS can still name it).
		def.contenders = "domination,goka,passthrough"
	default:
		return config{}, fmt.Errorf("BENCH_TOPOLOGY must be single or cluster, not %q", topology)
	}
	c := config{
		topology:         topology,
		root:             root,
		bench:            bench,
		domination:       env("BENCH_DOMINATION", filepath.Join(root, "bin", "domination")),
		dominationBefore: env("BENCH_DOMINATION_BEFORE", ""),
		passthrough:      env("BENCH_PASSTHROUGH", filepath.Join(bench, "bin", "passthrough")),
		goka:             env("BENCH_GOKA", filepath.Join(bench, "bin", "goka-shadow")),
		python:           env("BENCH_PYTHON", filepath.Join(bench, ".venv", "bin", "python")),
		profile:          env("BENCH_PROFILE", "") == "1",
		dominationPprof:  env("BENCH_DOMINATION_PPROF", filepath.Join(bench, "bin", "domination-pprof")),
		brokers:          strings.Split(env("BENCH_KAFKA_BROKERS", def.brokers), ","),
		chAddr:           env("BENCH_CLICKHOUSE_ADDR", def.chAddr),
		chHTTP:           env("BENCH_CLICKHOUSE_HTTP", def.chHTTP),
		chKafkaBrokers:   env("BENCH_CLICKHOUSE_KAFKA_BROKERS", ""),
		chCluster:        env("BENCH_CLICKHOUSE_CLUSTER", def.chCluster),
		services:         env("DOMINATION_SERVICES_DIR", filepath.Join(root, ".services")),
		prefix:           "bench-" + stamp,
		work:             filepath.Join(bench, ".work", stamp),
		results:          filepath.Join(bench, "results"),
		parts:            map[string]bool{},
		dominationEnv:    strings.Fields(env("BENCH_DOMINATION_ENV", "")),
		dominationArgs:   strings.Fields(env("BENCH_DOMINATION_ARGS", "")),
	}
	ints := []struct {
		name string
		def  int64
		dst  *int64
	}{
		{"BENCH_RATINGS", 1_000_000, &c.ratings},
		{"BENCH_FAUST_RATINGS", 50_000, &c.faustRatings},
		{"BENCH_VISITS", 1_000_000, &c.visits},
		{"BENCH_E2E_RATINGS", 1_000_000, &c.e2eRatings},
		{"BENCH_SCALE_ROWS", 50_000_000, &c.scaleRows},
		{"BENCH_SCALE_WINDOWS", 2_000_000, &c.scaleWindows},
	}
	for _, i := range ints {
		v, err := strconv.ParseInt(env(i.name, strconv.FormatInt(i.def, 10)), 10, 64)
		if err != nil || v <= 0 {
			return c, fmt.Errorf("%s must be a positive integer", i.name)
		}
		*i.dst = v
	}
	if c.faustRatings > c.ratings {
		c.faustRatings = c.ratings
	}
	if c.runs, err = strconv.Atoi(env("BENCH_RUNS", "5")); err != nil || c.runs <= 0 {
		return c, fmt.Errorf("BENCH_RUNS must be a positive integer")
	}
	if c.rate, err = strconv.Atoi(env("BENCH_RATE", "10000")); err != nil || c.rate <= 0 {
		return c, fmt.Errorf("BENCH_RATE must be a positive integer")
	}
	if c.steady, err = time.ParseDuration(env("BENCH_STEADY", "30s")); err != nil || c.steady <= 0 {
		return c, fmt.Errorf("BENCH_STEADY must be a positive duration")
	}
	if c.timeout, err = time.ParseDuration(env("BENCH_RUN_TIMEOUT", "3m")); err != nil || c.timeout <= 0 {
		return c, fmt.Errorf("BENCH_RUN_TIMEOUT must be a positive duration")
	}
	for _, p := range strings.Split(env("BENCH_PARTS", "ratings,visits,e2e,scale"), ",") {
		switch p = strings.TrimSpace(p); p {
		case "ratings", "visits", "e2e", "scale":
			c.parts[p] = true
		case "":
		default:
			return c, fmt.Errorf("BENCH_PARTS: unknown part %q (ratings, visits, e2e, scale)", p)
		}
	}
	for _, n := range strings.Split(env("BENCH_CONTENDERS", def.contenders), ",") {
		switch n = strings.TrimSpace(n); n {
		case "domination", "goka", "faust", "passthrough":
			c.contenders = append(c.contenders, n)
		case "":
		default:
			return c, fmt.Errorf("BENCH_CONTENDERS: unknown contender %q", n)
		}
	}
	return c, nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Whatever happens, no contender outlives the harness.
	defer killAll()
	go func() {
		<-ctx.Done()
		killAll()
	}()
	if err := run(ctx, cfg); err != nil {
		killAll()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	if err := os.MkdirAll(cfg.work, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.results, 0o755); err != nil {
		return err
	}
	b := &bench{cfg: cfg, admin: newAdmin(cfg.brokers), rep: newReport(cfg), services: servicePIDs(cfg.services, cfg.topology)}
	logf("benchmark %s (%s topology): logs in %s", cfg.prefix, cfg.topology, cfg.work)
	cluster := cfg.topology == "cluster"
	if cluster && !slices.Contains(cfg.contenders, "faust") {
		b.rep.note("cluster topology: Faust not run (BENCH_CONTENDERS=…,faust to include it)")
	}
	if cfg.parts["ratings"] {
		b.ratings(ctx)
	}
	if cfg.parts["visits"] && cluster {
		b.rep.note("cluster topology: part 2 (visits) skipped; it runs on the single-node topology")
	} else if cfg.parts["visits"] && ctx.Err() == nil {
		b.visits(ctx)
	}
	if cfg.parts["e2e"] && ctx.Err() == nil {
		b.endToEnd(ctx)
	}
	if cfg.parts["scale"] && cluster {
		b.rep.note("cluster topology: part 4 (query at scale) skipped; it runs on the single-node topology")
	} else if cfg.parts["scale"] && ctx.Err() == nil {
		b.scale(ctx)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	b.rep.finish()
	b.rep.print(os.Stdout)
	path := filepath.Join(cfg.results, cfg.prefix+".json")
	if err := b.rep.write(path); err != nil {
		return err
	}
	fmt.Printf("\nJSON: %s\n", path)
	return nil
}

// bench carries what every part shares.
type bench struct {
	cfg   config
	admin *admin
	rep   *report
	// services are the pids of the brokers, ClickHouse servers, ZooKeeper
	// and the harness.
	services []int
}

// logf reports progress on stderr, so stdout holds only the results.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
