//go:build reliability

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/segmentio/kafka-go"

	chserver "github.com/domination/domination/clickhouse"
	"github.com/domination/domination/internal/broker"
	"github.com/domination/domination/internal/testenv"
)

// The production topology (scripts/services/cluster.sh: three KRaft brokers
// with replication factor 3 and min.insync.replicas 2, a ZooKeeper, two
// ClickHouse replicas of one shard), broken on purpose. The test starts the
// cluster itself, on its own ports and data directory, so the single-node
// services the other tests use are never touched, and stops it at the end
// if it started it.
func TestReliabilityCluster(t *testing.T) {
	c := startCluster(t)
	t.Run("KafkaLeaderSIGKILLedTwice", c.leaderKilledTwice)
	t.Run("ClickHouseReplicaSIGKILLed", c.replicaKilled)
	t.Run("OneBrokerDownForTheRestOfTheRun", c.brokerKeptDown)
}

// cluster is the running cluster.sh topology.
type cluster struct {
	t       *testing.T
	dir     string   // its data, logs and pid files
	brokers []string // Kafka, in broker id order (id 1 first)
	chAddrs []string // ClickHouse, replica 1 first
	name    string   // the ClickHouse cluster
}

func clusterScript() string { return filepath.Join(repoRoot(), "scripts", "services", "cluster.sh") }

func (c *cluster) run(verb string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("bash", clusterScript(), verb)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: filepath.Join(repoRoot(), ".services", "cluster")}
	if d := os.Getenv("DOMINATION_SERVICES_DIR"); d != "" {
		c.dir = filepath.Join(d, "cluster")
	}
	_, err := c.run("status")
	startedHere := err != nil
	c.up(t)
	if startedHere {
		t.Cleanup(func() {
			if out, err := c.run("down"); err != nil {
				t.Logf("cluster.sh down: %v\n%s", err, out)
			}
		})
	}
	out, err := exec.Command("bash", clusterScript(), "env").Output()
	if err != nil {
		t.Fatalf("cluster.sh env: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "DOMINATION_KAFKA_BROKERS":
			c.brokers = strings.Split(v, ",")
		case "DOMINATION_CLICKHOUSE_ADDR":
			c.chAddrs = strings.Split(v, ",")
		case "DOMINATION_CLICKHOUSE_CLUSTER":
			c.name = v
		}
	}
	if len(c.brokers) < 3 || len(c.chAddrs) < 2 || c.name == "" {
		t.Fatalf("cluster.sh env gave brokers %v, clickhouse %v, cluster %q: want 3 brokers, 2 replicas and a name", c.brokers, c.chAddrs, c.name)
	}
	return c
}

// up starts whichever member is not running and waits until all are ready.
func (c *cluster) up(t *testing.T) {
	t.Helper()
	start := time.Now()
	if out, err := c.run("up"); err != nil {
		t.Fatalf("cluster.sh up: %v\n%s", err, out)
	}
	t.Logf("cluster up in %s", time.Since(start).Round(time.Millisecond))
}

// kill SIGKILLs a member ("kafka-2", "clickhouse-1") and waits until its
// process has died.
func (c *cluster) kill(t *testing.T, member string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, member, "pid"))
	if err != nil {
		t.Fatalf("pid of %s: %v", member, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid of %s: %v", member, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %s (pid %d): %v", member, pid, err)
	}
	testenv.WaitFor(t, member+" to die", 30*time.Second, func() bool { return !processAlive(pid) })
	t.Logf("%s (pid %d) SIGKILLed", member, pid)
}

// processAlive is false for a process that has exited, reaped or not.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func (c *cluster) client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(c.brokers...), Timeout: 10 * time.Second,
		Transport: &kafka.Transport{MetadataTTL: time.Second, DialTimeout: 2 * time.Second}}
}

// leader returns the member name of the broker leading partition 0 of topic.
func (c *cluster) leader(t *testing.T, topic string) string {
	t.Helper()
	var member string
	testenv.WaitFor(t, "a leader of "+topic+"/0", time.Minute, func() bool {
		md, err := c.client().Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil || len(md.Topics) != 1 {
			return false
		}
		for _, p := range md.Topics[0].Partitions {
			if p.ID == 0 && p.Error == nil && p.Leader.Host != "" {
				member = fmt.Sprintf("kafka-%d", p.Leader.ID)
				return true
			}
		}
		return false
	})
	return member
}

// inSync waits until every partition of the topics has all its replicas in
// sync: a broker that came back has caught up.
func (c *cluster) inSync(t *testing.T, topics ...string) {
	t.Helper()
	testenv.WaitFor(t, "every replica of "+strings.Join(topics, ", ")+" in sync", 3*time.Minute, func() bool {
		md, err := c.client().Metadata(context.Background(), &kafka.MetadataRequest{Topics: topics})
		if err != nil || len(md.Topics) != len(topics) {
			return false
		}
		for _, tp := range md.Topics {
			for _, p := range tp.Partitions {
				if p.Error != nil || len(p.Isr) != len(p.Replicas) {
					return false
				}
			}
		}
		return true
	})
}

// newEnv is a test world on the cluster: its database exists on every
// replica, migrate runs ON CLUSTER, and e reads through replica 1.
func (c *cluster) newEnv(t *testing.T) *env {
	t.Helper()
	// Every domination command the test runs inherits it: migrate up and
	// down run on the whole cluster.
	t.Setenv("DOMINATION_CLICKHOUSE_CLUSTER", c.name)
	var e *env
	// Registered before newEnvAt's own clean-up, so it runs after it: the
	// database goes from every replica once migrate down has run.
	t.Cleanup(func() {
		if e == nil {
			return
		}
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{c.chAddrs[0]}})
		if err != nil {
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+e.database+" ON CLUSTER "+c.name); err != nil {
			t.Logf("drop database %s on the cluster: %v", e.database, err)
		}
	})
	e = newEnvAt(t, c.brokers, c.chAddrs[0])
	return e
}

// on returns e reading through another ClickHouse replica.
func (e *env) on(addr string) *env {
	o := *e
	o.chAddr = addr
	o.migratedUp = false
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		e.t.Fatalf("open clickhouse at %s: %v", addr, err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	o.conn = conn
	return &o
}

// scenario is one cluster scenario: migrate on the cluster, a worker,
// ratings produced until breakAt returns, then a reconciliation through
// each ClickHouse replica.
func (c *cluster) scenario(t *testing.T, name string, seed int64, breakAt func(e *env, committed func() float64)) {
	e := c.newEnv(t)
	e.cli("migrate", "up", "--cluster", c.name)
	e.migratedUp = true
	// Every replica answers with the same version: the version table is
	// replicated.
	for _, addr := range c.chAddrs {
		r := e.on(addr).cli("migrate", "version", "--cluster", c.name)
		if got := strings.TrimSpace(r.stdout); !strings.HasPrefix(got, "version: ") || got == "version: none (no migration applied)" {
			t.Fatalf("migrate version through %s: %q", addr, got)
		}
	}
	w := e.startWorker("--max-batch", "500", "--clickhouse-addr", strings.Join(c.chAddrs, ","))
	committed := func() float64 { return w.metric(`domination_committed_total{agent="shadow"}`) }

	ctx, stop := context.WithCancel(context.Background())
	acked := make(chan int, 1)
	go func() { acked <- e.steadyRatings(ctx, seed, 10_000_000, 1500) }()
	testenv.WaitFor(t, "the worker to commit 5,000 ratings", 3*time.Minute, func() bool { return committed() >= 5000 })
	checkDurability(t, c.client(), e.ratings, e.shadow)

	breakAt(e, committed)

	// Ingestion goes on after the last fault, then the producer stops: the
	// reconciliation reads what the input topic holds.
	after := committed()
	testenv.WaitFor(t, "the worker to commit 5,000 more ratings", 3*time.Minute, func() bool { return committed() >= after+5000 })
	stop()
	n := <-acked
	t.Logf("the producer had %d ratings acknowledged", n)
	if !w.alive() {
		t.Fatalf("the worker exited:\n%s", w.logs.String())
	}
	rep := e.reconcileRatings(2 * time.Minute)
	printScenario(t, name, rep)
	if rep.Landed != rep.Produced || rep.Produced < n {
		t.Errorf("produced %d input records (%d acknowledged), landed %d", rep.Produced, n, rep.Landed)
	}
	// The other replica holds the same rows.
	other := e.on(c.chAddrs[1]).reconcileRatings(2 * time.Minute)
	if other.Missing != 0 || other.Duplicated != 0 || other.Landed != rep.Landed {
		t.Errorf("through replica 2: %s; through replica 1: %s", other, rep)
	}
}

// checkDurability fails t unless the topics are replicated as the cluster's
// defaults say: 3 replicas, 2 of them needed in sync.
func checkDurability(t *testing.T, client *kafka.Client, topics ...string) {
	t.Helper()
	ds, err := broker.Durability(context.Background(), client, topics...)
	if err != nil {
		t.Fatalf("describe the topics' replication: %v", err)
	}
	for _, d := range ds {
		if d.Factor != broker.ClusterReplicationFactor || d.MinInSync != broker.ClusterMinInSync {
			t.Errorf("topic %s has %d replicas, min.insync.replicas %d; want %d and %d", d.Topic, d.Factor, d.MinInSync,
				broker.ClusterReplicationFactor, broker.ClusterMinInSync)
		}
	}
}

// The broker leading the input partition is SIGKILLed mid-run and restarted,
// then the one leading the output partition: the other two take over
// leadership, acks=all keeps being answered by 2 in-sync replicas, and
// nothing acknowledged is lost.
func (c *cluster) leaderKilledTwice(t *testing.T) {
	c.scenario(t, "cluster-kafka-leader-sigkill-x2", 20261210, func(e *env, committed func() float64) {
		for _, topic := range []string{e.ratings, e.shadow} {
			c.inSync(t, e.ratings, e.shadow)
			member := c.leader(t, topic)
			before := committed()
			c.kill(t, member)
			testenv.WaitFor(t, "the worker to commit 3,000 ratings with "+member+" dead", 3*time.Minute, func() bool {
				return committed() >= before+3000
			})
			c.up(t)
		}
		c.inSync(t, e.ratings, e.shadow)
	})
}

// A ClickHouse replica is SIGKILLed mid-run and restarted: the other one's
// Kafka engine takes over the partitions the dead one consumed, and the
// restarted one fetches the parts it missed.
func (c *cluster) replicaKilled(t *testing.T) {
	c.scenario(t, "cluster-clickhouse-replica-sigkill", 20261211, func(e *env, committed func() float64) {
		r1 := e
		// On a release whose engine commits before it writes, only
		// unsquashed inserts make a kill lose nothing (scripts/services
		// configure them): check each replica is so.
		for _, addr := range c.chAddrs {
			conn := e.on(addr).conn
			v, err := chserver.ServerVersion(context.Background(), conn)
			if err != nil {
				t.Fatalf("read the version of %s: %v", addr, err)
			}
			if err := chserver.CheckCommitOrder(context.Background(), conn, v); err != nil {
				t.Fatalf("replica %s: %v", addr, err)
			}
		}
		testenv.WaitFor(t, "ratings in shadow", 2*time.Minute, func() bool { return r1.count("SELECT count() FROM shadow") > 0 })
		c.kill(t, "clickhouse-2")
		before := r1.count("SELECT count() FROM shadow FINAL")
		testenv.WaitFor(t, "replica 1 to store 5,000 more ratings", 3*time.Minute, func() bool {
			return r1.count("SELECT count() FROM shadow FINAL") >= before+5000
		})
		c.up(t)
	})
}

// A broker is SIGKILLed and stays down: ingestion goes on with 2 of 3, and
// the reconciliation runs with it still down. It is started again after.
func (c *cluster) brokerKeptDown(t *testing.T) {
	t.Cleanup(func() { c.up(t) })
	c.scenario(t, "cluster-kafka-broker-down", 20261212, func(e *env, committed func() float64) {
		c.inSync(t, e.ratings, e.shadow)
		member := c.leader(t, e.ratings)
		before := committed()
		c.kill(t, member)
		testenv.WaitFor(t, "the worker to commit 10,000 ratings with "+member+" down", 3*time.Minute, func() bool {
			return committed() >= before+10000
		})
	})
}

// appendReport adds a line to $DOMINATION_RELIABILITY_REPORT.
func appendReport(line string) {
	path := os.Getenv("DOMINATION_RELIABILITY_REPORT")
	if path == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}
