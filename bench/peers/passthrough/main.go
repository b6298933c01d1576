// Command passthrough is the benchmark's baseline: it consumes a topic in a
// consumer group and produces every record's key and value unchanged to
// another topic, committing an input offset only after its output is
// acknowledged by all in-sync replicas, with kafka-go and no decoding.
//
// It has the shape of domination's runtime (internal/stream) without the
// work: one goroutine per assigned partition reading with a partition
// Reader, batches of up to -max-batch records or -max-wait after the first,
// one synchronous WriteMessages per batch (RequireAll, murmur2 keys), then
// Generation.CommitOffsets. What domination costs beyond it is the price of
// decoding, classifying, encoding, dead-lettering and metrics.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	group := flag.String("group", "", "consumer group")
	input := flag.String("input", "", "topic to read")
	output := flag.String("output", "", "topic to write")
	maxBatch := flag.Int("max-batch", 4096, "records per produce-and-commit cycle, per partition")
	maxWait := flag.Duration("max-wait", 20*time.Millisecond, "how long a batch gathers after its first record")
	commit := flag.Bool("commit", true, "commit offsets (false: for latency experiments only; nothing is ever committed)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file until stopped (for comparing with domination's)")
	flag.Parse()
	if *group == "" || *input == "" || *output == "" {
		log.Fatal("passthrough: -group, -input and -output are required")
	}
	addrs := strings.Split(*brokers, ",")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatalf("passthrough: %v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatalf("passthrough: %v", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	w := &kafka.Writer{
		Addr:         kafka.TCP(addrs...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    *maxBatch,
		BatchBytes:   4 << 20,
		BatchTimeout: 2 * time.Millisecond,
	}
	defer w.Close()
	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                *group,
		Brokers:           addrs,
		Topics:            []string{*input},
		GroupBalancers:    []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
		HeartbeatInterval: 2 * time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  20 * time.Second,
		StartOffset:       kafka.FirstOffset,
		Logger:            kafka.LoggerFunc(func(string, ...any) {}),
	})
	if err != nil {
		log.Fatalf("passthrough: %v", err)
	}
	defer g.Close()
	for {
		gen, err := g.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return
			}
			log.Printf("passthrough: join group: %v", err)
			time.Sleep(time.Second)
			continue
		}
		for _, a := range gen.Assignments[*input] {
			gen.Start(func(gctx context.Context) {
				copyPartition(gctx, gen, w, addrs, *input, *output, a.ID, a.Offset, *maxBatch, *maxWait, *commit)
			})
		}
	}
}

// copyPartition copies one partition until the generation ends.
func copyPartition(ctx context.Context, gen *kafka.Generation, w *kafka.Writer, brokers []string, input, output string, id int, offset int64, maxBatch int, maxWait time.Duration, commit bool) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:         brokers,
		Topic:           input,
		Partition:       id,
		MinBytes:        1,
		MaxBytes:        8 << 20,
		MaxWait:         250 * time.Millisecond,
		QueueCapacity:   maxBatch,
		ReadLagInterval: -1,
	})
	defer r.Close()
	if offset < 0 {
		offset = kafka.FirstOffset
	}
	if err := r.SetOffset(offset); err != nil {
		log.Printf("passthrough: partition %d: %v", id, err)
		return
	}
	in := make([]kafka.Message, 0, maxBatch)
	out := make([]kafka.Message, 0, maxBatch)
	for {
		in, out = in[:0], out[:0]
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return
		}
		in = append(in, m)
		more, cancel := context.WithTimeout(ctx, maxWait)
		for len(in) < maxBatch {
			m, err := r.FetchMessage(more)
			if err != nil {
				break
			}
			in = append(in, m)
		}
		cancel()
		for _, m := range in {
			out = append(out, kafka.Message{Topic: output, Key: m.Key, Value: m.Value, Time: m.Time})
		}
		for {
			err := w.WriteMessages(context.WithoutCancel(ctx), out...)
			if err == nil {
				break
			}
			log.Printf("passthrough: produce %d records: %v; retrying", len(out), err)
			time.Sleep(100 * time.Millisecond)
		}
		if !commit {
			continue
		}
		next := in[len(in)-1].Offset + 1
		if err := gen.CommitOffsets(map[string]map[int]int64{input: {id: next}}); err != nil {
			log.Printf("passthrough: commit %d/%d: %v", id, next, err)
			return
		}
	}
}
