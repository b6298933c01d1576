package hostport

import (
	"testing"

	"github.com/domination/domination/internal/testenv"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		addr, want string // want: "" for valid, else part of the error
	}{
		{"127.0.0.1:9092", ""},
		{"kafka:19092", ""},
		{"[::1]:9000", ""},
		{"localhost", "want host:port"},
		{"::1:9000", "want host:port"},
		{":9000", "empty host"},
		{"kafka:", `port ""`},
		{"kafka:abc", `port "abc"`},
		{"kafka:0", `port "0"`},
		{"kafka:65536", `port "65536"`},
	} {
		t.Run(tc.addr, func(t *testing.T) { testenv.CheckErr(t, "Check", Check(tc.addr), tc.want) })
	}
}

func TestCheckAllNamesTheFirstBadAddress(t *testing.T) {
	testenv.CheckErr(t, "CheckAll", CheckAll("kafka broker", []string{"a:1", "[::1]:2"}), "")
	testenv.CheckErr(t, "CheckAll", CheckAll("kafka broker", nil), "")
	testenv.CheckErr(t, "CheckAll", CheckAll("kafka broker", []string{"a:1", "b", "c"}), `kafka broker "b": want host:port`)
}
