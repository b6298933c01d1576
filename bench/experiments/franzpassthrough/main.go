// Command franzpassthrough is the pass-through baseline written with
// franz-go instead of kafka-go, for one experiment: telling the latency
// that kafka-go's consumer and writer add from the latency of the broker
// and the machine. Same contract as peers/passthrough (consume in a group,
// produce each record unchanged with acks=all, commit after the ack) and
// the same flags, so the harness can run it in the pass-through's place:
//
//	go build -o bin/franzpassthrough ./experiments/franzpassthrough
//	BENCH_PASSTHROUGH=bin/franzpassthrough BENCH_PARTS=e2e BENCH_CONTENDERS=passthrough ./bin/harness
//
// It is not one of the benchmark's contenders.
package main

import (
	"context"
	"flag"
	"log"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	group := flag.String("group", "", "consumer group")
	input := flag.String("input", "", "topic to read")
	output := flag.String("output", "", "topic to write")
	flag.Parse()
	if *group == "" || *input == "" || *output == "" {
		log.Fatal("franzpassthrough: -group, -input and -output are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ConsumerGroup(*group), kgo.ConsumeTopics(*input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		log.Fatalf("franzpassthrough: %v", err)
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		var out []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, &kgo.Record{Topic: *output, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp})
		})
		if len(out) == 0 {
			continue
		}
		if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
			// Stop without committing: a restart re-delivers the records.
			log.Fatalf("franzpassthrough: produce %d records: %v", len(out), err)
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			log.Printf("franzpassthrough: commit: %v", err)
		}
	}
}
