package check

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// listen opens a TCP listener on 127.0.0.1 that accepts and closes every
// connection until the test ends.
func listen(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// closedPort returns an address on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return ap
}

func TestTCP(t *testing.T) {
	open := listen(t)
	closed := closedPort(t)
	expired := func() context.Context {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		t.Cleanup(cancel)
		return ctx
	}
	tests := []struct {
		name    string
		ctx     context.Context
		checker TCP
		wantErr string // "" = healthy
		wantIs  error
	}{
		{name: "listener accepts", ctx: context.Background(), checker: TCP{Address: open}},
		{name: "custom dialer", ctx: context.Background(),
			checker: TCP{Address: open, Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}}},
		{name: "closed port is refused", ctx: context.Background(), checker: TCP{Address: closed},
			wantErr: "check: connecting to " + closed.String() + ": connection refused", wantIs: syscall.ECONNREFUSED},
		{name: "context past its deadline", ctx: expired(), checker: TCP{Address: open},
			wantErr: "check: connecting to " + open.String() + ": context deadline exceeded", wantIs: context.DeadlineExceeded},
		{name: "no address", ctx: context.Background(), checker: TCP{},
			wantErr: "check: tcp: no address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.checker.Check(tt.ctx)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want healthy", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Check() = %v, want %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
		})
	}
}

func TestTCPString(t *testing.T) {
	c := TCP{Address: netip.MustParseAddrPort("[2001:db8::11]:6443")}
	if got, want := c.String(), "tcp [2001:db8::11]:6443"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestTCPTimeout points the checker at a listener whose accept queue is full
// (listen backlog 0, never accepting), so the kernel drops the SYN and the
// connect hangs until the probe's context ends it.
func TestTCPTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4(sa.(*syscall.SockaddrInet4).Addr), uint16(sa.(*syscall.SockaddrInet4).Port))

	// Fill the accept queue until a connect no longer completes.
	full := false
	for range 8 {
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		if err != nil {
			full = true
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	if !full {
		t.Skip("the kernel kept accepting connections on a listener with backlog 0")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = TCP{Address: addr}.Check(ctx)
	if want := "check: connecting to " + addr.String() + ": context deadline exceeded"; err == nil || err.Error() != want {
		t.Fatalf("Check() = %v, want %q", err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Check() took %s, want about the 200ms timeout", d)
	}
}
