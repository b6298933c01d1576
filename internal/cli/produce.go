package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/domination/domination/producer"
)

func produceCommand() *cli.Command {
	seed := &cli.Int64Flag{Name: "seed", Usage: "seed of the generated stream; the same seed gives the same ids and values (0: random, printed)"}
	return &cli.Command{
		Name:  "produce",
		Usage: "generate load: ratings or visits (every message acknowledged by all in-sync replicas)",
		Subcommands: []*cli.Command{
			{
				Name:  "ratings",
				Usage: `send {"rating", "unique_id"} messages to the ratings topic`,
				Flags: []cli.Flag{
					&cli.Float64Flag{Name: "rate", Usage: "messages per second (0: as fast as possible)"},
					&cli.Int64Flag{Name: "count", Value: 0, Usage: "messages to send (0: until stopped)"},
					&cli.Int64Flag{Name: "min", Value: producer.DefaultMinRating, Usage: "smallest rating"},
					&cli.Int64Flag{Name: "max", Value: producer.DefaultMaxRating, Usage: "largest rating"},
					seed,
				},
				Action: func(c *cli.Context) error {
					cfg := producer.RatingsConfig{
						Topic: global(c, "ratings-topic"), Rate: c.Float64("rate"), Count: c.Int64("count"),
						Min: c.Int64("min"), Max: c.Int64("max"), Seed: c.Int64("seed"),
					}.WithDefaults()
					return runProducer(c, "ratings", cfg.Topic, cfg.Validate, func(r producerRun) (producer.Summary, error) {
						return producer.RunRatings(r.ctx, r.w, cfg, r.progress, r.log)
					})
				},
			},
			{
				Name:  "visits",
				Usage: `send {"id", "account_id", "store_id", "timestamp"} visits to the visits topic`,
				Flags: []cli.Flag{
					&cli.Int64SliceFlag{Name: "account-id", Usage: "account to pick from (repeatable; default 352)"},
					&cli.StringSliceFlag{Name: "store-id", Usage: "store to pick from (repeatable; default \"default\"); a visit may also have no store"},
					&cli.Float64Flag{Name: "frequency", Value: producer.DefaultFrequency, Usage: "messages per second ('inf': as fast as possible)"},
					&cli.Int64Flag{Name: "max-messages", Value: producer.DefaultMaxVisits, Usage: "messages to send (0: until stopped)"},
					&cli.Float64Flag{Name: "late-fraction", Usage: "share of visits stamped --late-by in the past, to exercise lateness"},
					&cli.DurationFlag{Name: "late-by", Value: producer.DefaultLateBy, Usage: "how far back a late visit is stamped"},
					seed,
				},
				Action: func(c *cli.Context) error {
					cfg := producer.VisitsConfig{
						Topic: global(c, "visits-topic"), AccountIDs: c.Int64Slice("account-id"), StoreIDs: c.StringSlice("store-id"),
						Frequency: c.Float64("frequency"), MaxMessages: c.Int64("max-messages"), Seed: c.Int64("seed"),
						LateFraction: c.Float64("late-fraction"), LateBy: c.Duration("late-by"),
					}.WithDefaults()
					return runProducer(c, "visits", cfg.Topic, cfg.Validate, func(r producerRun) (producer.Summary, error) {
						return producer.RunVisits(r.ctx, r.w, cfg, r.progress, r.log)
					})
				},
			},
		},
	}
}
