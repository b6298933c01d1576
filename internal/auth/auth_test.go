package auth

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

const secretA, secretB = "aaaaaaaaaaaaaaaa-secret", "bbbbbbbbbbbbbbbb-secret"

func TestParseReadsNamesScopesAndComments(t *testing.T) {
	toks, err := Parse(strings.NewReader(`
# operators
store1 `+secretA+` accounts=3,1,3
prom   `+secretB+` metrics ; ops cccccccccccccccc-secret accounts=* metrics
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 3 {
		t.Fatalf("Len = %d, want 3", toks.Len())
	}
	tok, ok := toks.Lookup(secretA)
	if !ok || tok.Name != "store1" || !slices.Equal(tok.Scope.Accounts, []int64{1, 3}) || tok.Scope.Metrics {
		t.Fatalf("Lookup(store1's secret) = %+v, %v", tok, ok)
	}
	if !tok.Scope.Allows(3) || tok.Scope.Allows(2) {
		t.Fatalf("scope %s allows the wrong accounts", tok.Scope)
	}
	if tok, _ := toks.Lookup(secretB); tok.Name != "prom" || !tok.Scope.Metrics || tok.Scope.HasAccounts() {
		t.Fatalf("prom = %+v", tok)
	}
	if tok, _ := toks.Lookup("cccccccccccccccc-secret"); !tok.Scope.AllAccounts || !tok.Scope.Allows(12345) {
		t.Fatalf("ops = %+v", tok)
	}
	if _, ok := toks.Lookup("not a token"); ok {
		t.Fatal("an unknown secret was found")
	}
	if _, ok := toks.Lookup(""); ok {
		t.Fatal("the empty secret was found")
	}
	if !toks.MetricsProtected() {
		t.Fatal("MetricsProtected = false with a metrics token")
	}
	if got := strings.Join(toks.Names(), "; "); got != "store1 (accounts=1,3); prom (metrics); ops (accounts=* metrics)" {
		t.Fatalf("Names = %s", got)
	}
}

func TestParseErrorsNameTheLineAndNeverTheToken(t *testing.T) {
	cases := []struct{ text, want string }{
		{"a " + secretA, "fields"},
		{"a " + secretA + " accounts=x", "not an integer"},
		{"a " + secretA + " admin", "unknown scope"},
		{"a tiny5 accounts=1", "shorter than"},
		{"a " + secretA + " accounts=1\na " + secretB + " accounts=2", "used twice"},
		{"a " + secretA + " accounts=1\nb " + secretA + " accounts=2", "same secret"},
	}
	for _, tc := range cases {
		_, err := Parse(strings.NewReader(tc.text), "tokens file t")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "line") {
			t.Errorf("Parse(%q) = %v, want an error naming the line and %q", tc.text, err, tc.want)
			continue
		}
		for _, s := range []string{secretA, secretB, "tiny5"} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("Parse error %q contains the token", err)
			}
		}
	}
}

func TestMergeRefusesARepeatedName(t *testing.T) {
	a, _ := New("x", secretA, Scope{Metrics: true})
	b, _ := New("x", secretB, Scope{AllAccounts: true})
	if _, err := Single(a).Merge(Single(b)); err == nil {
		t.Fatal("Merge of two tokens named x succeeded")
	}
	var none *Tokens
	merged, err := none.Merge(Single(a))
	if err != nil || merged.Len() != 1 {
		t.Fatalf("nil.Merge(one) = %v, %v", merged.Len(), err)
	}
}

func TestFromRequestReadsTheBearerHeaderOrTheQuery(t *testing.T) {
	cases := []struct {
		header, query, want string
		err                 bool
	}{
		{header: "Bearer " + secretA, want: secretA},
		{header: "bearer  " + secretA, want: secretA},
		{query: "access_token=" + secretB, want: secretB},
		{header: "Bearer " + secretA, query: "access_token=" + secretB, want: secretA},
		{header: "Basic xyz", err: true},
		{header: "Bearer ", err: true},
		{err: true},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/ws?"+tc.query, nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		got, err := FromRequest(r)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("FromRequest(header %q, query %q) = %q, %v", tc.header, tc.query, got, err)
		}
	}
}

func TestContextCarriesTheToken(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("a bare context carries a token")
	}
	tok, _ := New("x", secretA, Scope{Accounts: []int64{7}})
	got, ok := FromContext(WithToken(context.Background(), tok))
	if !ok || got.Name != "x" || !got.Scope.Allows(7) {
		t.Fatalf("FromContext = %+v, %v", got, ok)
	}
}
