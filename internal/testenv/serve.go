package testenv

import (
	"context"
	"net"
	"testing"
)

// Listen returns a listener on a free port of 127.0.0.1.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Serve runs serve on ln until t ends, then cancels serve's context and
// fails t unless serve returned nil. It returns ln's address.
func Serve(t testing.TB, ln net.Listener, serve func(context.Context, net.Listener) error) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve after cancel = %v, want nil", err)
		}
	})
	return ln.Addr().String()
}

// ClosedAddr returns an address of 127.0.0.1 on which nothing listens: a
// port that was free a moment ago, whose listener is closed again.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln := Listen(t)
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
