package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// maxHTTPBody is how much of a response body a probe reads before closing
// the connection.
const maxHTTPBody = 4 << 10

// maxHTTPHeader bounds the response headers a probe accepts.
const maxHTTPHeader = 64 << 10

// HTTPOptions configures an [HTTP] checker; see [NewHTTP].
type HTTPOptions struct {
	// URL is the http:// or https:// URL to GET, e.g.
	// https://192.0.2.11:6443/readyz.
	URL string
	// ExpectStatus lists the status codes that mean healthy; empty means
	// [200]. Redirects are not followed: a 302 is healthy only if listed.
	ExpectStatus []int
	// CAFile is a PEM bundle of the CAs that may sign the server's
	// certificate (https only). Empty means the system roots.
	CAFile string
	// InsecureSkipVerify accepts any server certificate (https only).
	InsecureSkipVerify bool
	// ServerName is the name sent in TLS SNI and verified against the
	// certificate (https only), for a URL that holds an IP address. Empty
	// means the URL's host.
	ServerName string
	// Host, if set, is sent as the Host header instead of the URL's host. It
	// does not change ServerName.
	Host string
	// ClientCertFile and ClientKeyFile are a PEM certificate and key for
	// mutual TLS (https only). Both or neither. kube-apiserver's /readyz is
	// open to anonymous clients by default and needs neither.
	ClientCertFile, ClientKeyFile string
}

// HTTP is healthy when a GET of its URL is answered with one of the expected
// status codes. Build it with [NewHTTP].
//
// Every probe opens a new connection (keep-alives are off: a fresh
// connection proves that the server still accepts new ones), ignores proxy
// settings from the environment, does not follow redirects and reads at most
// 4 KiB of the body.
type HTTP struct {
	url    string
	shown  string // url without a password, for messages
	expect []int
	host   string
	client *http.Client
}

var _ Checker = (*HTTP)(nil)

// NewHTTP validates opts, loads the CA and client certificate files once and
// returns the checker. It lists every problem it finds.
func NewHTTP(opts HTTPOptions) (*HTTP, error) {
	var errs []error
	u, err := url.Parse(opts.URL)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("url %q: %w", opts.URL, err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("url %q: scheme must be http or https", opts.URL))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("url %q: no host", opts.URL))
	}
	for _, s := range opts.ExpectStatus {
		if s < 100 || s > 599 {
			errs = append(errs, fmt.Errorf("expected status %d: must be 100-599", s))
		}
	}
	isHTTPS := err == nil && u.Scheme == "https"
	if err == nil && !isHTTPS {
		for _, o := range []struct {
			name string
			set  bool
		}{
			{"caFile", opts.CAFile != ""},
			{"insecureSkipVerify", opts.InsecureSkipVerify},
			{"serverName", opts.ServerName != ""},
			{"clientCertFile", opts.ClientCertFile != ""},
			{"clientKeyFile", opts.ClientKeyFile != ""},
		} {
			if o.set {
				errs = append(errs, fmt.Errorf("%s is set for the non-TLS url %q", o.name, opts.URL))
			}
		}
	}
	tlsConfig := &tls.Config{
		ServerName:         opts.ServerName,
		InsecureSkipVerify: opts.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
	}
	if opts.CAFile != "" {
		pool, err := loadCAs(opts.CAFile)
		if err != nil {
			errs = append(errs, err)
		}
		tlsConfig.RootCAs = pool
	}
	if (opts.ClientCertFile == "") != (opts.ClientKeyFile == "") {
		errs = append(errs, errors.New("clientCertFile and clientKeyFile must be set together"))
	} else if opts.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.ClientCertFile, opts.ClientKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("loading client certificate %s and key %s: %w", opts.ClientCertFile, opts.ClientKeyFile, err))
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("check: http: %w", err)
	}

	expect := slices.Clone(opts.ExpectStatus)
	if len(expect) == 0 {
		expect = []int{http.StatusOK}
	}
	transport := &http.Transport{
		Proxy:                  nil, // a health check goes to the target, never through a proxy
		DialContext:            (&net.Dialer{}).DialContext,
		TLSClientConfig:        tlsConfig,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxHTTPHeader,
	}
	return &HTTP{
		url:    opts.URL,
		shown:  u.Redacted(),
		expect: expect,
		host:   opts.Host,
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// loadCAs reads a PEM bundle into a certificate pool.
func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", path)
	}
	return pool, nil
}

// Check sends one GET on a new connection and compares the status.
func (c *HTTP) Check(ctx context.Context) error {
	if c == nil || c.client == nil {
		return errors.New("check: http checker not built with NewHTTP")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return fmt.Errorf("check: GET %s: %w", c.shown, err)
	}
	if c.host != "" {
		req.Host = c.host
	}
	req.Header.Set("User-Agent", "vipvs-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("check: GET %s: %w", c.shown, reason(ctx, err))
	}
	// Read a little so that a small answer is consumed whole, then hang up.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHTTPBody))
	_ = resp.Body.Close()
	if ctx.Err() != nil {
		// The transport may hand over a response that raced with the
		// timeout (even one the cancellation provoked): too late counts
		// as failed.
		return fmt.Errorf("check: GET %s: %w", c.shown, context.Cause(ctx))
	}
	if !slices.Contains(c.expect, resp.StatusCode) {
		return fmt.Errorf("check: GET %s: status %d (want %s)", c.shown, resp.StatusCode, statusList(c.expect))
	}
	return nil
}

// String returns "GET <url>".
func (c *HTTP) String() string {
	if c == nil {
		return "GET <nil>"
	}
	return "GET " + c.shown
}

// statusList formats status codes as "200" or "200, 401".
func statusList(codes []int) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ", ")
}
