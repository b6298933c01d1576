// Command goka-shadow is domination's shadow agent written with Goka
// (github.com/lovoo/goka), the benchmark's Go stream-processing peer.
//
// It consumes ratings {"rating": <int>, "unique_id": "<string>"} from -input
// in the consumer group -group, classifies each (ShaDow: multiple of 15,
// else Sha: of 3, else Dow: of 5, else Incompatible) and emits
// {"type","unique_id","emit_timestamp","rating"} to -output keyed by
// unique_id, with encoding/json as a Goka user would. Input it cannot decode
// is emitted unchanged to -dlq.
//
// Goka marks an input offset only when every emit of its callback has been
// acknowledged, and sarama commits marked offsets every
// Consumer.Offsets.AutoCommit.Interval: with RequiredAcks = WaitForAll that
// is the same at-least-once contract as domination's agent.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

type rating struct {
	Rating   *int64  `json:"rating"`
	UniqueID *string `json:"unique_id"`
}

type shadowEvent struct {
	Type          string `json:"type"`
	UniqueID      string `json:"unique_id"`
	EmitTimestamp int64  `json:"emit_timestamp"`
	Rating        int64  `json:"rating"`
}

func classify(r int64) string {
	switch {
	case r%15 == 0:
		return "ShaDow"
	case r%3 == 0:
		return "Sha"
	case r%5 == 0:
		return "Dow"
	}
	return "Incompatible"
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	group := flag.String("group", "", "consumer group")
	input := flag.String("input", "", "ratings topic")
	output := flag.String("output", "", "shadow topic")
	dlq := flag.String("dlq", "", "dead-letter topic")
	commitEvery := flag.Duration("commit-interval", 100*time.Millisecond, "how often sarama commits marked offsets")
	flag.Parse()
	if *group == "" || *input == "" || *output == "" || *dlq == "" {
		log.Fatal("goka-shadow: -group, -input, -output and -dlq are required")
	}

	cfg := goka.DefaultConfig()
	// Goka's default, V2_0_0_0, works with Kafka 4.x too (sarama sends the
	// request versions that release introduced, all still served); pinned
	// here so a sarama upgrade cannot change it silently.
	cfg.Version = sarama.V2_0_0_0
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Compression = sarama.CompressionNone // domination sends uncompressed
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = *commitEvery
	goka.ReplaceGlobalConfig(cfg)

	out, dead := goka.Stream(*output), goka.Stream(*dlq)
	process := func(ctx goka.Context, msg any) {
		raw := msg.([]byte)
		var r rating
		if err := json.Unmarshal(raw, &r); err != nil || r.Rating == nil || r.UniqueID == nil || *r.Rating < 1 || *r.Rating > 100 {
			ctx.Emit(dead, ctx.Key(), raw)
			return
		}
		v, err := json.Marshal(shadowEvent{Type: classify(*r.Rating), UniqueID: *r.UniqueID, EmitTimestamp: ctx.Timestamp().Unix(), Rating: *r.Rating})
		if err != nil {
			ctx.Fail(err)
		}
		ctx.Emit(out, *r.UniqueID, v)
	}
	g := goka.DefineGroup(goka.Group(*group),
		goka.Input(goka.Stream(*input), new(codec.Bytes), process),
		goka.Output(out, new(codec.Bytes)),
		goka.Output(dead, new(codec.Bytes)),
	)
	tmc := goka.NewTopicManagerConfig()
	tmc.Stream.Replication, tmc.Table.Replication = 1, 1
	p, err := goka.NewProcessor(strings.Split(*brokers, ","), g,
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithTopicManagerConfig(tmc)))
	if err != nil {
		log.Fatalf("goka-shadow: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := p.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "goka-shadow:", err)
		os.Exit(1)
	}
}
