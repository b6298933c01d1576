// Package deploy checks the deployment files beside it against the real
// binary: the Helm chart sets only the variables the binary reads, and maps
// every one; each metric a Prometheus rule or a Grafana panel names is
// exported by a running worker configured by the chart.
//
// The tests need helm (HELM, or the copy scripts/deploy-check.sh builds) and
// the Kafka broker and ClickHouse server of `make up`; they fail, never
// skip, without them. Run them with `make deploy-check`.
package deploy
