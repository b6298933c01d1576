package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/backoff"
	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/guard"
	"github.com/domination/domination/internal/status"
	"github.com/domination/domination/internal/web"
)

// statusWatchEvery is how often `status` looks again while it watches
// whether waiting partitions move.
const statusWatchEvery = time.Second

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show every stage from input topic to ClickHouse table: offsets, lag, stores, dead letters; exit 1 when a stage is stalled",
		Description: `For each stage (the shadow, visits and windows agents' consumer groups, and
the Kafka engine tables' groups in ClickHouse) prints the topic's end offsets,
the group's committed offsets and lag per partition, and whether the stage is
stalled: records wait and the committed offset has not moved for
--stall-after (the windows stage gets its window and grace on top, since it
keeps open windows uncommitted on purpose). For the stores it prints the row
count, the newest event time, the freshness against the topic and the rows of
the errors table; and the dead-letter topics' records by reason.

Stalled needs time to see. Without --worker, status watches for itself: it
looks again every second and answers as soon as every partition that had
records waiting at the first look has moved, or nothing waits; a partition
that has not moved when --stall-after has passed is stalled. A drained or
moving pipeline therefore answers in about a second, a stalled one after
--stall-after (20s by default: ClickHouse 18.16's Kafka engine may sit 7.5s on
an offset before it flushes a block). With --worker URL, status prints the
report that worker serves on GET /status, which has watched all along, at
once; a worker that checks web tokens wants --token (or --token-file).

Exit status: 0 when no stage is stalled, 1 when one is (stderr names the
stage, table, partition and offset) or when Kafka, ClickHouse or the worker
cannot be reached, 2 on a usage error.`,
		// --token, --token-file and --web-tls-* are --worker's credentials.
		Flags: slices.Concat(append(clientTokenFlags(),
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "output: table or json"},
			&cli.StringFlag{Name: "worker", Usage: fmt.Sprintf("read the report of the worker at this URL (http://host:%d) instead of watching Kafka and ClickHouse", web.DefaultPort), EnvVars: env("STATUS_WORKER")},
			&cli.DurationFlag{Name: "stall-after", Value: status.DefaultStallAfter, Usage: "how long records may wait with the committed offset unmoved before a stage is stalled", EnvVars: env("STALL_AFTER")},
		), agentFlags(), windowFlags("tumbling window size of the workers", "grace of the workers' windows"),
			engineGroupFlags(", when ClickHouse does not have the table", ""), []cli.Flag{
				&cli.StringFlag{Name: "shadow-dlq-topic", Value: guard.DefaultShadowDeadLetterTopic, Usage: "dead-letter topic of the guard for shadow records (counted when it exists)", EnvVars: env("SHADOW_DLQ_TOPIC")},
				&cli.StringFlag{Name: "active-visitors-dlq-topic", Value: guard.DefaultActiveVisitorsDeadLetterTopic, Usage: "dead-letter topic of the guard for active-visitors records (counted when it exists)", EnvVars: env("ACTIVE_VISITORS_DLQ_TOPIC")},
				&cli.DurationFlag{Name: "timeout", Value: status.DefaultTimeout, Usage: "bound on reaching Kafka, ClickHouse or the worker, and on each look"},
			}),
		// A usage error exits 2, so that scripts tell it from a stall.
		OnUsageError: func(c *cli.Context, err error, sub bool) error {
			return cli.Exit(usageError(c, err, sub).Error(), 2)
		},
		Action: runStatus,
	}
}

func runStatus(c *cli.Context) error {
	format := c.String("format")
	if format != "table" && format != "json" {
		return cli.Exit(fmt.Sprintf("status: format %q is not one of table, json (see --help)", format), 2)
	}
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("status takes no arguments, got %q (see --help)", c.Args().First()), 2)
	}
	var rep status.Report
	var err error
	if url := c.String("worker"); url != "" {
		rep, err = workerStatus(c, url)
	} else {
		rep, err = watchStatus(c)
	}
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteTable(c.App.Writer)
	}
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	if stalled := rep.StalledStages(); len(stalled) > 0 {
		lines := make([]string, len(stalled))
		for i, s := range stalled {
			lines[i] = s.Describe()
		}
		return cli.Exit("stalled: "+strings.Join(lines, "; "), 1)
	}
	return nil
}

// statusConfig turns the flags into the collector's Config.
func statusConfig(c *cli.Context) status.Config {
	return status.Config{
		Shadow: agents.ShadowConfig{
			InputTopic:      global(c, "ratings-topic"),
			OutputTopic:     global(c, "shadow-topic"),
			DeadLetterTopic: global(c, "ratings-dlq-topic"),
			GroupID:         c.String("shadow-group"),
		},
		Visits: agents.VisitsConfig{
			InputTopic:       global(c, "visits-topic"),
			RepartitionTopic: c.String("repartition-topic"),
			OutputTopic:      global(c, "active-visitors-topic"),
			DeadLetterTopic:  global(c, "visits-dlq-topic"),
			GroupID:          c.String("visits-group"),
			Window:           c.Duration("window"),
			Grace:            c.Duration("grace"),
		},
		Engines: clickhouse.KafkaSource{
			ShadowTopic:         global(c, "shadow-topic"),
			ShadowGroup:         c.String("shadow-consumer-group"),
			ActiveVisitorsTopic: global(c, "active-visitors-topic"),
			ActiveVisitorsGroup: c.String("active-visitors-consumer-group"),
		},
		ShadowDeadLetterTopic:         c.String("shadow-dlq-topic"),
		ActiveVisitorsDeadLetterTopic: c.String("active-visitors-dlq-topic"),
		StallAfter:                    c.Duration("stall-after"),
		Timeout:                       c.Duration("timeout"),
	}
}

// watchStatus collects until it can tell whether a stage is stalled: until
// every partition that had records waiting at the first look has moved,
// or has not moved for its stage's stall time.
func watchStatus(c *cli.Context) (status.Report, error) {
	cfg := statusConfig(c)
	if err := cfg.WithDefaults().Validate(); err != nil {
		return status.Report{}, cli.Exit(err.Error()+" (see --help)", 2)
	}
	if c.Duration("stall-after") <= 0 || c.Duration("timeout") <= 0 {
		return status.Report{}, cli.Exit("status: --stall-after and --timeout must be positive (see --help)", 2)
	}
	kc, chc, err := serviceConfigs(c)
	if err != nil {
		return status.Report{}, err
	}
	ctx := c.Context
	client, err := kc.Client()
	if err != nil {
		return status.Report{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
	defer cancel()
	if err := broker.Ping(pctx, client); err != nil {
		return status.Report{}, err
	}
	conn, err := clickhouse.Open(pctx, chc)
	if err != nil {
		return status.Report{}, err
	}
	defer conn.Close()
	col, err := status.New(cfg, client, conn, nil, nil)
	if err != nil {
		return status.Report{}, err
	}
	rep, err := col.Collect(ctx)
	if err != nil {
		return status.Report{}, err
	}
	first := waitingSince(rep)
	if len(first) > 0 {
		longest := time.Duration(0)
		for _, s := range rep.Stages {
			longest = max(longest, time.Duration(s.StallAfter))
		}
		fmt.Fprintf(c.App.ErrWriter, "status: %d partitions have records waiting; watching up to %s whether they move\n", len(first), longest)
	}
	for stillWaiting(rep, first) {
		if !backoff.Sleep(ctx, statusWatchEvery) {
			return status.Report{}, ctx.Err()
		}
		if rep, err = col.Collect(ctx); err != nil {
			return status.Report{}, err
		}
	}
	return rep, nil
}

type stagePartition struct {
	stage     string
	partition int
}

// waitingSince maps each partition with records waiting to since when.
func waitingSince(r status.Report) map[stagePartition]time.Time {
	out := map[stagePartition]time.Time{}
	for _, s := range r.Stages {
		for _, p := range s.Partitions {
			if p.WaitingSince != nil {
				out[stagePartition{s.Name, p.Partition}] = *p.WaitingSince
			}
		}
	}
	return out
}

// stillWaiting reports whether a partition that waited at the first look
// still waits on the same offset without being stalled yet: only then can
// another look change the answer.
func stillWaiting(r status.Report, first map[stagePartition]time.Time) bool {
	for _, s := range r.Stages {
		for _, p := range s.Partitions {
			since, ok := first[stagePartition{s.Name, p.Partition}]
			if ok && !p.Stalled && p.WaitingSince != nil && p.WaitingSince.Equal(since) {
				return true
			}
		}
	}
	return false
}

// workerStatus reads the report a worker serves on GET /status.
func workerStatus(c *cli.Context, base string) (status.Report, error) {
	url := strings.TrimRight(base, "/")
	if !strings.HasSuffix(url, "/status") {
		url += "/status"
	}
	token, err := clientToken(c)
	if err != nil {
		return status.Report{}, err
	}
	tlsCfg, err := clientTLS(c)
	if err != nil {
		return status.Report{}, err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment}}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return status.Report{}, cli.Exit(fmt.Sprintf("status: --worker %q: %v (see --help)", base, err), 2)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return status.Report{}, fmt.Errorf("read status of worker at %s: %w", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return status.Report{}, fmt.Errorf("read status of worker at %s: %w", url, err)
	}
	if res.StatusCode != http.StatusOK {
		return status.Report{}, fmt.Errorf("read status of worker at %s: %s: %s", url, res.Status, strings.TrimSpace(string(body)))
	}
	var rep status.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return status.Report{}, fmt.Errorf("read status of worker at %s: %w", url, err)
	}
	if len(rep.Stages) == 0 {
		return status.Report{}, errors.New("read status of worker at " + url + ": the answer holds no stages")
	}
	return rep, nil
}
