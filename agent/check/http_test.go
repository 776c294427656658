package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testHandler serves the paths the HTTP tests probe.
func testHandler(release <-chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "[-]etcd failed: reason withheld\nreadyz check failed", http.StatusInternalServerError)
	})
	mux.HandleFunc("/unauthorized", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 64 { // 4 MiB, far more than a probe reads
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "api.example" {
			http.Error(w, "wrong host "+r.Host, http.StatusMisdirectedRequest)
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	return mux
}

// newServer starts an httptest server (TLS or not) with testHandler; slow
// handlers are released before the server closes.
func newServer(t *testing.T, tlsOn bool) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(testHandler(release))
	srv.Config.ErrorLog = quietLog()
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv
}

// quietLog drops the server's log of the TLS handshakes the tests make fail.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// writeCA writes the server's certificate as a PEM file and returns its path.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHTTP(t *testing.T) {
	plain := newServer(t, false)
	secure := newServer(t, true)
	ca := writeCA(t, secure)
	tests := []struct {
		name    string
		opts    HTTPOptions
		timeout time.Duration // 0: none
		wantErr string        // "" = healthy; else a substring of the error
		wantIs  error         // for errors.Is
		wantAs  any           // a pointer for errors.As
	}{
		{name: "200 is healthy", opts: HTTPOptions{URL: plain.URL + "/ok"}},
		{name: "500 fails with the status", opts: HTTPOptions{URL: plain.URL + "/fail"},
			wantErr: "check: GET " + plain.URL + "/fail: status 500 (want 200)"},
		{name: "401 fails by default", opts: HTTPOptions{URL: plain.URL + "/unauthorized"},
			wantErr: "check: GET " + plain.URL + "/unauthorized: status 401 (want 200)"},
		{name: "401 accepted when expected", opts: HTTPOptions{URL: plain.URL + "/unauthorized", ExpectStatus: []int{200, 401}}},
		{name: "expected list in the message", opts: HTTPOptions{URL: plain.URL + "/fail", ExpectStatus: []int{200, 401}},
			wantErr: "status 500 (want 200, 401)"},
		{name: "redirect is not followed", opts: HTTPOptions{URL: plain.URL + "/redirect"},
			wantErr: "check: GET " + plain.URL + "/redirect: status 302 (want 200)"},
		{name: "redirect accepted when expected", opts: HTTPOptions{URL: plain.URL + "/redirect", ExpectStatus: []int{302}}},
		{name: "large body is cut short", opts: HTTPOptions{URL: plain.URL + "/big"}},
		{name: "Host header", opts: HTTPOptions{URL: plain.URL + "/host", Host: "api.example"}},
		{name: "wrong Host header", opts: HTTPOptions{URL: plain.URL + "/host"},
			wantErr: "status 421 (want 200)"},
		{name: "slow handler times out", opts: HTTPOptions{URL: plain.URL + "/slow"}, timeout: 200 * time.Millisecond,
			wantErr: "check: GET " + plain.URL + "/slow: context deadline exceeded", wantIs: context.DeadlineExceeded},
		{name: "closed port", opts: HTTPOptions{URL: "http://" + closedPort(t).String() + "/ok"},
			wantErr: "connection refused"},

		{name: "https with the CA file", opts: HTTPOptions{URL: secure.URL + "/ok", CAFile: ca}},
		{name: "https 500 with the CA file", opts: HTTPOptions{URL: secure.URL + "/fail", CAFile: ca},
			wantErr: "check: GET " + secure.URL + "/fail: status 500 (want 200)"},
		{name: "https without the CA fails verification", opts: HTTPOptions{URL: secure.URL + "/ok"},
			wantErr: "certificate", wantAs: new(*tls.CertificateVerificationError)},
		{name: "https insecure skips verification", opts: HTTPOptions{URL: secure.URL + "/ok", InsecureSkipVerify: true}},
		{name: "https server name override", opts: HTTPOptions{URL: secure.URL + "/ok", CAFile: ca, ServerName: "example.com"}},
		{name: "https wrong server name", opts: HTTPOptions{URL: secure.URL + "/ok", CAFile: ca, ServerName: "wrong.example"},
			wantErr: "wrong.example", wantAs: new(x509.HostnameError)},
		{name: "https slow handler times out", opts: HTTPOptions{URL: secure.URL + "/slow", CAFile: ca}, timeout: 200 * time.Millisecond,
			wantErr: "context deadline exceeded", wantIs: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewHTTP(tt.opts)
			if err != nil {
				t.Fatalf("NewHTTP: %v", err)
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			start := time.Now()
			err = c.Check(ctx)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Check() took %s", d)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want healthy", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Check() = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if tt.wantAs != nil && !errors.As(err, tt.wantAs) {
				t.Errorf("errors.As(%v, %T) = false", err, tt.wantAs)
			}
		})
	}
}

// TestHTTPNewConnectionEachProbe counts the connections the server accepts:
// keep-alives are off, so every probe opens a new one.
func TestHTTPNewConnectionEachProbe(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		name := "http"
		if tlsOn {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			var opened atomic.Int64
			srv := httptest.NewUnstartedServer(testHandler(nil))
			srv.Config.ErrorLog = quietLog()
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					opened.Add(1)
				}
			}
			if tlsOn {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			opts := HTTPOptions{URL: srv.URL + "/ok"}
			if tlsOn {
				opts.CAFile = writeCA(t, srv)
			}
			c, err := NewHTTP(opts)
			if err != nil {
				t.Fatal(err)
			}
			const probes = 3
			for i := range probes {
				if err := c.Check(context.Background()); err != nil {
					t.Fatalf("probe %d: %v", i, err)
				}
			}
			if got := opened.Load(); got != probes {
				t.Errorf("server saw %d new connections for %d probes, want one each", got, probes)
			}
		})
	}
}

// TestHTTPClientCertificate probes a server that requires a client
// certificate, with and without one.
func TestHTTPClientCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	clientCert := writeClientCert(t, certFile, keyFile)

	pool := x509.NewCertPool()
	pool.AddCert(clientCert)
	srv := httptest.NewUnstartedServer(testHandler(nil))
	srv.Config.ErrorLog = quietLog()
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()
	ca := writeCA(t, srv)

	with, err := NewHTTP(HTTPOptions{URL: srv.URL + "/ok", CAFile: ca, ClientCertFile: certFile, ClientKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := with.Check(context.Background()); err != nil {
		t.Errorf("with a client certificate: Check() = %v, want healthy", err)
	}
	without, err := NewHTTP(HTTPOptions{URL: srv.URL + "/ok", CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	if err := without.Check(context.Background()); err == nil {
		t.Error("without a client certificate: Check() = nil, want an error")
	}
}

// writeClientCert writes a self-signed client certificate and its key.
func writeClientCert(t *testing.T, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vipvs-check"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestNewHTTPInvalid lists every problem of a bad configuration.
func TestNewHTTPInvalid(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts HTTPOptions
		want []string // substrings of the error, one per problem
	}{
		{name: "bad scheme", opts: HTTPOptions{URL: "ftp://192.0.2.11/"},
			want: []string{`url "ftp://192.0.2.11/": scheme must be http or https`}},
		{name: "no host", opts: HTTPOptions{URL: "http:///readyz"},
			want: []string{"no host"}},
		{name: "unparsable url", opts: HTTPOptions{URL: "https://[::1/"},
			want: []string{`url "https://[::1/"`}},
		{name: "status out of range", opts: HTTPOptions{URL: "http://192.0.2.11/", ExpectStatus: []int{200, 99, 600}},
			want: []string{"expected status 99: must be 100-599", "expected status 600: must be 100-599"}},
		{name: "TLS options on http", opts: HTTPOptions{URL: "http://192.0.2.11/", CAFile: notPEM, InsecureSkipVerify: true, ServerName: "x"},
			want: []string{"caFile is set for the non-TLS url", "insecureSkipVerify is set", "serverName is set"}},
		{name: "missing CA file", opts: HTTPOptions{URL: "https://192.0.2.11/", CAFile: filepath.Join(dir, "missing.pem")},
			want: []string{"reading CA file", "no such file or directory"}},
		{name: "CA file without PEM", opts: HTTPOptions{URL: "https://192.0.2.11/", CAFile: notPEM},
			want: []string{"no PEM certificate found"}},
		{name: "client cert without key", opts: HTTPOptions{URL: "https://192.0.2.11/", ClientCertFile: notPEM},
			want: []string{"clientCertFile and clientKeyFile must be set together"}},
		{name: "bad client cert", opts: HTTPOptions{URL: "https://192.0.2.11/", ClientCertFile: notPEM, ClientKeyFile: notPEM},
			want: []string{"loading client certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewHTTP(tt.opts)
			if err == nil {
				t.Fatalf("NewHTTP() = %v, nil; want an error", c)
			}
			var missing []string
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					missing = append(missing, w)
				}
			}
			if diff := cmp.Diff([]string(nil), missing); diff != "" {
				t.Errorf("NewHTTP() = %v; missing (-want +got):\n%s", err, diff)
			}
			if !strings.HasPrefix(err.Error(), "check: http: ") {
				t.Errorf("error %q does not start with %q", err, "check: http: ")
			}
		})
	}
}

func TestHTTPString(t *testing.T) {
	c, err := NewHTTP(HTTPOptions{URL: "https://user:secret@192.0.2.11:6443/readyz"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.String(), "GET https://user:xxxxx@192.0.2.11:6443/readyz"; got != want {
		t.Errorf("String() = %q, want %q (password hidden)", got, want)
	}
	if err := (&HTTP{}).Check(context.Background()); err == nil {
		t.Error("Check() on an HTTP not built by NewHTTP = nil, want an error")
	}
}
