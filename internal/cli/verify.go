package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/urfave/cli/v2"

	"github.com/domination/domination/agents"
	"github.com/domination/domination/internal/query"
	"github.com/domination/domination/internal/verify"
	"github.com/domination/domination/producer"
)

func verifyCommand() *cli.Command {
	since := &cli.StringFlag{Name: "since", Usage: "read the topics from the first record at or after this time (same forms as query --since; empty: from the start)"}
	wait := &cli.DurationFlag{Name: "wait", Usage: "re-check until nothing is missing or duplicated, for at most this long (0: check once)"}
	format := &cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "text", Usage: "output: text or json"}
	return &cli.Command{
		Name:  "verify",
		Usage: "reconcile what was sent with what ClickHouse and the dead-letter topics hold",
		Description: `Accounts for every input record: landed in ClickHouse, dead-lettered (with its
reason), or missing; and counts what ClickHouse holds twice after the
de-duplication the product promises. Prints one line

  produced=N landed=N missing=N duplicated=N dead_lettered=N [reasons=...]

and exits 1 when anything is missing, duplicated or misclassified. Rows and
dead letters that no input explains (other runs' data in the same tables) are
counted as unexpected=N, for information. Inputs are read from the input topic (every partition, up to its
end as it is when verify starts), or, for ratings, recomputed from the seed
of a 'domination produce ratings --seed S --count N' run. It holds every
input in memory: bound large topics with --since.`,
		Subcommands: []*cli.Command{
			{
				Name:  "ratings",
				Usage: "reconcile the ratings topic with shadow FINAL and the ratings dead-letter topic",
				Flags: []cli.Flag{since, wait, format,
					&cli.Int64Flag{Name: "seed", Usage: "recompute the inputs of 'produce ratings --seed S' instead of reading the ratings topic"},
					&cli.IntFlag{Name: "count", Usage: "with --seed: how many ratings were produced"},
					&cli.Int64Flag{Name: "min", Value: producer.DefaultMinRating, Usage: "with --seed: the producer's --min"},
					&cli.Int64Flag{Name: "max", Value: producer.DefaultMaxRating, Usage: "with --seed: the producer's --max"},
				},
				Action: func(c *cli.Context) error {
					chk := verify.RatingsCheck{InputTopic: global(c, "ratings-topic"), DeadLetterTopic: global(c, "ratings-dlq-topic")}
					if c.IsSet("seed") || c.IsSet("count") {
						if !c.IsSet("seed") || c.Int("count") <= 0 {
							return errors.New("verify ratings: --seed and a positive --count go together")
						}
						if c.Int64("min") > c.Int64("max") {
							return fmt.Errorf("verify ratings: --min %d is above --max %d", c.Int64("min"), c.Int64("max"))
						}
						chk.Expected = verify.SeededRatings(c.Int64("seed"), c.Int("count"), c.Int64("min"), c.Int64("max"))
					}
					return runVerify(c, &chk.Since, func(ctx context.Context, s *verify.Source) (func(context.Context) (verify.Report, error), error) {
						return s.Ratings(ctx, chk)
					})
				},
			},
			{
				Name:  "visits",
				Usage: "reconcile the visits topic with active_visitors FINAL (an offline recomputation of the windows) and the visits dead-letter topic",
				Flags: []cli.Flag{since, wait, format,
					&cli.DurationFlag{Name: "window", Value: agents.DefaultWindow, Usage: "the workers' --window"},
				},
				Action: func(c *cli.Context) error {
					chk := verify.VisitsCheck{InputTopic: global(c, "visits-topic"), DeadLetterTopic: global(c, "visits-dlq-topic"), Window: c.Duration("window")}
					if chk.Window <= 0 || chk.Window%time.Second != 0 {
						return fmt.Errorf("verify visits: --window %s must be whole seconds", chk.Window)
					}
					return runVerify(c, &chk.Since, func(ctx context.Context, s *verify.Source) (func(context.Context) (verify.Report, error), error) {
						return s.Visits(ctx, chk)
					})
				},
			},
			{
				Name:  "rollup",
				Usage: "reconcile what query answers (seals for sealed minutes, FINAL for the rest) with shadow and active_visitors read with FINAL alone",
				Flags: []cli.Flag{format,
					&cli.StringFlag{Name: "since", Value: "30d", Usage: "from this time (same forms as query --since; empty: from the start)"},
					&cli.StringFlag{Name: "until", Usage: "up to this time, exclusive (empty: no bound)"},
				},
				Action: runVerifyRollup,
			},
		},
	}
}

// runVerify checks the arguments, connects to both services, reconciles
// (polling up to --wait) and prints the report.
func runVerify(c *cli.Context, since *time.Time, prepare func(context.Context, *verify.Source) (func(context.Context) (verify.Report, error), error)) error {
	format, err := textOrJSON(c)
	if err != nil {
		return err
	}
	if *since, err = query.ParseTime(c.String("since"), time.Now()); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	kc, err := kafkaConfig(c)
	if err != nil {
		return err
	}
	dialer, err := kc.Dialer()
	if err != nil {
		return err
	}
	return withClickHouse(c, c.Duration("wait")+5*time.Minute, func(ctx context.Context, conn driver.Conn) error {
		check, err := prepare(ctx, &verify.Source{Brokers: kc.Brokers, Dialer: dialer, Conn: conn})
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		var rep verify.Report
		if wait := c.Duration("wait"); wait > 0 {
			wctx, wcancel := context.WithTimeout(ctx, wait)
			rep, err = verify.Poll(wctx, time.Second, check)
			wcancel()
		} else {
			rep, err = check(ctx)
		}
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if err := printReport(c, format, rep); err != nil {
			return err
		}
		if !rep.OK() {
			return fmt.Errorf("verify: %d missing, %d duplicated, %d misclassified", rep.Missing, rep.Duplicated, rep.Mismatched)
		}
		return nil
	})
}

// runVerifyRollup compares the queries' answers with the stores read with
// FINAL, prints the report and fails when any bucket differs.
func runVerifyRollup(c *cli.Context) error {
	format, err := textOrJSON(c)
	if err != nil {
		return err
	}
	since, until, err := timeSpan(c, time.Now())
	if err != nil {
		return err
	}
	return withClickHouse(c, 10*time.Minute, func(ctx context.Context, conn driver.Conn) error {
		rep, err := (&verify.Source{Conn: conn}).Rollup(ctx, since, until)
		if err != nil {
			return fmt.Errorf("verify rollup: %w", err)
		}
		if err := printReport(c, format, rep); err != nil {
			return err
		}
		if !rep.OK() {
			return fmt.Errorf("verify rollup: %d buckets differ from the stores read with FINAL", rep.Mismatched)
		}
		return nil
	})
}
