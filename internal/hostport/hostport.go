// Package hostport checks the host:port addresses users give for Kafka
// brokers and ClickHouse, so that a typo is reported when the configuration
// is read rather than as a dial error later.
package hostport

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Check reports why addr is not a usable address: it must be host:port (an
// IPv6 host in brackets) with a non-empty host and a port in 1..65535.
func Check(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port")
	}
	if host == "" {
		return errors.New("empty host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 1..65535", port)
	}
	return nil
}

// CheckAll checks every address of addrs, and names the first bad one as
// what "addr": why.
func CheckAll(what string, addrs []string) error {
	for _, a := range addrs {
		if err := Check(a); err != nil {
			return fmt.Errorf("%s %q: %w", what, a, err)
		}
	}
	return nil
}
