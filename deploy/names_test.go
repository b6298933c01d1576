package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// The files whose metric names the worker must export.
const (
	rulesFile     = "prometheus/domination-alerts.yaml"
	dashboardFile = "grafana/domination.json"
)

// synthesized are the series Prometheus itself writes for every target, not
// found on any /metrics page.
var synthesized = map[string]bool{"up": true}

// exprMetrics returns the metric names an expression selects. Every selector
// must name its metric: a selector by labels alone would match anything, and
// then nothing proves the rule or the panel still has data.
func exprMetrics(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var bad error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				if m.Type != labels.MatchEqual {
					bad = fmt.Errorf("selector %s matches names by pattern", vs)
				}
				name = m.Value
			}
		}
		if name == "" {
			bad = fmt.Errorf("selector %s names no metric", vs)
		}
		names = append(names, name)
		return nil
	})
	return names, bad
}

// grafanaVariables are replaced by values that parse before a panel's query
// is read as PromQL; Grafana does the same when it runs the query.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m",
	"${__rate_interval}", "5m",
	"$__interval", "1m",
	"${__interval}", "1m",
	"$__range", "1h",
	"${instance:regex}", ".*",
	"${instance}", ".*",
	"$instance", ".*",
)

// labelValues is Grafana's variable query label_values(selector, label).
var labelValues = regexp.MustCompile(`^\s*label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

// reference is where a metric name was found.
type reference struct{ metric, where string }

// ruleReferences reads the rule file and returns the metrics each rule names.
func ruleReferences(t *testing.T) []reference {
	t.Helper()
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Record      string            `yaml:"record"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, rulesFile, &doc)
	var refs []reference
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			where := fmt.Sprintf("%s: rule %s%s", rulesFile, r.Alert, r.Record)
			if r.Alert != "" {
				if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
					t.Errorf("%s: severity %q, want critical or warning (what routes use)", where, sev)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: needs a summary and a description", where)
				}
			}
			names, err := exprMetrics(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", where, err)
			}
			for _, n := range names {
				refs = append(refs, reference{n, where})
			}
		}
	}
	if len(refs) == 0 {
		t.Fatalf("%s names no metric", rulesFile)
	}
	return refs
}

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// dashboardReferences returns the metrics each panel query and each
// variable query of the dashboard names.
func dashboardReferences(t *testing.T) []reference {
	t.Helper()
	d := readDashboard(t)
	var refs []reference
	add := func(where, expr string) {
		names, err := exprMetrics(grafanaVariables.Replace(expr))
		if err != nil {
			t.Errorf("%s: %s: %v", dashboardFile, where, err)
		}
		for _, n := range names {
			refs = append(refs, reference{n, dashboardFile + ": " + where})
		}
	}
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			add(fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := variableQuery(v.Query)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(metric, label)", dashboardFile, v.Name, q)
			continue
		}
		add("variable "+v.Name, m[1])
	}
	if len(refs) == 0 {
		t.Fatalf("%s names no metric", dashboardFile)
	}
	return refs
}

// variableQuery reads a variable's query, a string or {"query": string}.
func variableQuery(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(raw, &o)
	return o.Query
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestExprMetricsNamesEverySelectedMetric(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		want    []string
		wantErr string
	}{
		{expr: `up == 0`, want: []string{"up"}},
		{expr: `sum by (agent) (rate(domination_consumed_total{instance=~".*"}[5m]))`, want: []string{"domination_consumed_total"}},
		{expr: `histogram_quantile(0.99, sum by (le) (rate(domination_batch_records_bucket[5m])))`, want: []string{"domination_batch_records_bucket"}},
		{expr: `a > 1 and deriv((sum(b))[15m:1m]) > 0`, want: []string{"a", "b"}},
		{expr: `{__name__="domination_ready"} == 0`, want: []string{"domination_ready"}},
		{expr: `{__name__=~"domination_.*"}`, wantErr: "by pattern"},
		{expr: `{agent="shadow"}`, wantErr: "names no metric"},
		{expr: `sum(rate(x[5m])`, wantErr: "unclosed"},
	} {
		got, err := exprMetrics(tc.expr)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("exprMetrics(%q) error = %v, want one containing %q", tc.expr, err, tc.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("exprMetrics(%q) = %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
}

// The dashboard is one a Grafana would import: unique panel ids, every
// panel placed, every query with a refId and on the dashboard's data source
// variable, and every query naming a metric.
func TestDashboardIsWellFormed(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard needs a uid and a title: %q %q", d.UID, d.Title)
	}
	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d missing or used by %q too", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v is not a place on the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("panel %q: data source %s is not the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refIDs[tg.RefID] {
				t.Errorf("panel %q: refId %q missing or repeated", p.Title, tg.RefID)
			}
			refIDs[tg.RefID] = true
		}
	}
	dashboardReferences(t)
}

// Every rule parses and names its metrics (promtool checks the rest).
func TestRulesNameTheirMetrics(t *testing.T) {
	ruleReferences(t)
}
