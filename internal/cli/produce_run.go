package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/urfave/cli/v2"

	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/producer"
)

type producerRun struct {
	ctx      context.Context
	w        *kafka.Writer
	progress producer.Progress
	log      *slog.Logger
}

// runProducer validates the generator's config, creates the topic if
// needed, runs the generator until it is done or interrupted, and prints its
// summary on stdout.
func runProducer(c *cli.Context, what, topic string, validate func() error, run func(producerRun) (producer.Summary, error)) error {
	if err := validate(); err != nil {
		return err
	}
	log, kc, err := loggerAndKafka(c)
	if err != nil {
		return err
	}
	client, err := kc.Client()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = broker.EnsureTopics(tctx, client, broker.Topic{Name: topic, Partitions: broker.SharedPartitions})
	cancel()
	if err != nil {
		return fmt.Errorf("produce %s: %w", what, err)
	}
	t, err := kc.Transport()
	if err != nil {
		return err
	}
	w := producer.NewWriter(kc.Brokers, t)
	defer w.Close()
	term := false
	if f, ok := c.App.ErrWriter.(*os.File); ok {
		term = producer.IsTerminal(f)
	}
	sum, err := run(producerRun{ctx: ctx, w: w, progress: producer.ProgressPrinter(c.App.ErrWriter, term, what), log: log})
	fmt.Fprintln(c.App.Writer, sum.String())
	return err
}
