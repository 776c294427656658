// Package wire is the protocol between the agent and its BGP speaker
// process (vipvs-bgp-speaker, agentd/bgpspeaker), which runs agent/bgp so
// that the agent itself does not link GoBGP.
//
// The agent writes requests to the speaker's stdin and reads replies from
// its stdout, one JSON object per line (at most [MaxLine] bytes). Every
// message carries the protocol [Version]; every request an ID, which its
// reply repeats (replies may come out of order: a graceful shutdown is
// answered when it is over, while status requests are served meanwhile).
// The first request is [OpConfig], exactly once; the speaker then runs
// until its stdin closes. Unknown fields, unknown operations, a missing or
// a stray argument are rejected with an error naming the field.
//
// The speaker's configuration carries the peers' TCP MD5 keys: the agent
// reads the password files and passes the keys only through this pipe,
// never on a command line or in the environment.
package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Version is the protocol version every message carries; a message of
// another version is rejected.
const Version = 1

// MaxLine is the longest message accepted, newline excluded.
const MaxLine = 1 << 20

// The operations of a [Request].
const (
	// OpConfig builds the speaker from Request.Config and starts it; the
	// first request, sent once.
	OpConfig = "config"
	// OpAdvertise advertises the host route of Request.Addr.
	OpAdvertise = "advertise"
	// OpWithdraw withdraws the host route of Request.Addr.
	OpWithdraw = "withdraw"
	// OpGracefulShutdown drains (RFC 8326); answered when the drain is over.
	OpGracefulShutdown = "gshut"
	// OpReconfigure applies Request.Config to the running speaker;
	// Response.RestartNeeded when it cannot.
	OpReconfigure = "reconfigure"
	// OpStatus asks for Response.Status.
	OpStatus = "status"
)

// Request is a message from the agent to the speaker.
type Request struct {
	// V is the protocol version, [Version].
	V int `json:"v"`
	// ID identifies the request (not 0); the reply repeats it.
	ID uint64 `json:"id"`
	// Op is the operation: one of the Op constants.
	Op string `json:"op"`
	// Config is the speaker's configuration (OpConfig, OpReconfigure only).
	Config *Config `json:"config,omitempty"`
	// Addr is the VIP whose host route is advertised or withdrawn
	// (OpAdvertise, OpWithdraw only).
	Addr *netip.Addr `json:"addr,omitempty"`
}

// Response is the speaker's reply to the request of the same ID.
type Response struct {
	// V is the protocol version, [Version].
	V int `json:"v"`
	// ID is the request's; 0 when the request was too malformed to read
	// its ID.
	ID uint64 `json:"id"`
	// Error is why the request failed; "" when it succeeded.
	Error string `json:"error,omitempty"`
	// RestartNeeded answers OpReconfigure: the change (ASN, router ID,
	// listen port) needs a new speaker; nothing was changed.
	RestartNeeded bool `json:"restartNeeded,omitempty"`
	// Status answers OpStatus.
	Status *Status `json:"status,omitempty"`
}

// Config is the speaker's configuration (agent/bgp.Config); the speaker
// validates it.
type Config struct {
	// ASN is the node's AS number.
	ASN uint32 `json:"asn"`
	// RouterID is the node's BGP identifier (IPv4).
	RouterID netip.Addr `json:"routerID"`
	// ListenPort is the TCP port to accept BGP connections on; 0: none.
	ListenPort uint16 `json:"listenPort,omitempty"`
	// Peers are the routers to announce to.
	Peers []Peer `json:"peers"`
	// BFD is the BFD profile of the peers whose BFD is on.
	BFD BFDProfile `json:"bfd"`
	// GracefulWait is each wait of the graceful shutdown; 0: the default.
	GracefulWait time.Duration `json:"gracefulWait,omitempty"`
}

// Peer is one BGP neighbour (agent/bgp.Peer).
type Peer struct {
	// Address is the peer's IP address.
	Address netip.Addr `json:"address"`
	// ASN is the peer's AS number.
	ASN uint32 `json:"asn"`
	// Port is the peer's TCP port; 0 means 179.
	Port uint16 `json:"port,omitempty"`
	// SourceAddress is the local address of the session; zero: any.
	SourceAddress netip.Addr `json:"sourceAddress,omitzero"`
	// Password is the TCP MD5 key read from the peer's password file.
	Password string `json:"password,omitempty"`
	// HoldTime is the BGP hold time proposed; 0: the default.
	HoldTime time.Duration `json:"holdTime,omitempty"`
	// KeepaliveTime is the keepalive interval; 0: a third of the hold time.
	KeepaliveTime time.Duration `json:"keepaliveTime,omitempty"`
	// ConnectRetry is the wait between connection attempts; 0: the default.
	ConnectRetry time.Duration `json:"connectRetry,omitempty"`
	// MultihopTTL allows an eBGP peer that many hops away when above 1.
	MultihopTTL uint8 `json:"multihopTTL,omitempty"`
	// BFD watches the session with BFD.
	BFD bool `json:"bfd,omitempty"`
}

// BFDProfile is the BFD timing (agent/bgp.BFDProfile); zero fields take
// the defaults.
type BFDProfile struct {
	// MinTx is the desired minimum transmit interval.
	MinTx time.Duration `json:"minTx,omitempty"`
	// MinRx is the required minimum receive interval.
	MinRx time.Duration `json:"minRx,omitempty"`
	// Multiplier is the detection multiplier.
	Multiplier uint8 `json:"multiplier,omitempty"`
}

// Status is the speaker's state (agent/bgp.Status).
type Status struct {
	// Running is true while the BGP server serves.
	Running bool `json:"running,omitempty"`
	// GracefulShutdown is true once the routes were marked GRACEFUL_SHUTDOWN.
	GracefulShutdown bool `json:"gracefulShutdown,omitempty"`
	// Peers are the configured peers, in configuration order.
	Peers []PeerStatus `json:"peers,omitempty"`
}

// PeerStatus is the state of one session (agent/bgp.PeerStatus).
type PeerStatus struct {
	// Address is the peer's address.
	Address netip.Addr `json:"address"`
	// ASN is the peer's AS number.
	ASN uint32 `json:"asn"`
	// State is the BGP session state ("established"; "" when not running).
	State string `json:"state,omitempty"`
	// BFD is the BFD session state; "" without BFD.
	BFD string `json:"bfd,omitempty"`
	// Advertised are the routes sent to the peer.
	Advertised []netip.Prefix `json:"advertised,omitempty"`
}

// Validate checks the request's envelope: version, ID, operation, and that
// it carries exactly the arguments of its operation.
func (r *Request) Validate() error {
	if r.V != Version {
		return fmt.Errorf("v: protocol version %d, this speaker speaks %d: install the agent and vipvs-bgp-speaker of the same release", r.V, Version)
	}
	if r.ID == 0 {
		return errors.New("id: missing (0): number every request")
	}
	needConfig, needAddr := false, false
	switch r.Op {
	case OpConfig, OpReconfigure:
		needConfig = true
	case OpAdvertise, OpWithdraw:
		needAddr = true
	case OpGracefulShutdown, OpStatus:
	case "":
		return errors.New("op: missing")
	default:
		return fmt.Errorf("op: unknown operation %q: use config, advertise, withdraw, gshut, reconfigure or status", r.Op)
	}
	switch {
	case needConfig && r.Config == nil:
		return fmt.Errorf("config: missing: %s needs it", r.Op)
	case !needConfig && r.Config != nil:
		return fmt.Errorf("config: not an argument of %s", r.Op)
	case needAddr && (r.Addr == nil || !r.Addr.IsValid()):
		return fmt.Errorf("addr: missing: %s needs the VIP", r.Op)
	case !needAddr && r.Addr != nil:
		return fmt.Errorf("addr: not an argument of %s", r.Op)
	}
	return nil
}

// Validate checks the reply's envelope: version and ID.
func (r *Response) Validate() error {
	if r.V != Version {
		return fmt.Errorf("v: protocol version %d, this agent speaks %d: install the agent and vipvs-bgp-speaker of the same release", r.V, Version)
	}
	if r.ID == 0 && r.Error == "" {
		return errors.New("id: missing (0) in a reply that is no error")
	}
	return nil
}

// Reader reads messages, one per line.
type Reader struct{ r *bufio.Reader }

// NewReader reads messages from r.
func NewReader(r io.Reader) *Reader { return &Reader{bufio.NewReaderSize(r, 64<<10)} }

// line returns the next non-empty line without its newline; io.EOF at the
// end. A line longer than MaxLine is an error that ends the stream.
func (r *Reader) line() ([]byte, error) {
	for {
		var buf []byte
		for {
			frag, err := r.r.ReadSlice('\n')
			buf = append(buf, frag...)
			if len(buf) > MaxLine+1 {
				return nil, fmt.Errorf("message longer than %d bytes", MaxLine)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF && len(buf) > 0 {
				return nil, fmt.Errorf("message %.40q...: %w", buf, io.ErrUnexpectedEOF)
			}
			if err != nil {
				return nil, err
			}
			break
		}
		buf = bytes.TrimSpace(buf)
		if len(buf) > 0 {
			return buf, nil
		}
	}
}

// decode unmarshals one line strictly into v: unknown fields and trailing
// data are errors.
func decode(line []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the message")
	}
	return nil
}

// MalformedError is a message that was read but cannot be accepted; the
// stream goes on with the next line.
type MalformedError struct {
	// ID is the message's ID when it could be read, else 0.
	ID uint64
	// Err says what is wrong.
	Err error
}

func (e *MalformedError) Error() string { return "malformed message: " + e.Err.Error() }
func (e *MalformedError) Unwrap() error { return e.Err }

// ReadRequest returns the next request. A request that is not valid JSON,
// has unknown fields or fails [Request.Validate] is a *MalformedError (the
// next request can still be read); other errors end the stream (io.EOF
// when it closed cleanly).
func (r *Reader) ReadRequest() (*Request, error) {
	line, err := r.line()
	if err != nil {
		return nil, err
	}
	var req Request
	if err := decode(line, &req); err != nil {
		return nil, &MalformedError{ID: req.ID, Err: err}
	}
	if err := req.Validate(); err != nil {
		return nil, &MalformedError{ID: req.ID, Err: err}
	}
	return &req, nil
}

// ReadResponse returns the next reply, like ReadRequest.
func (r *Reader) ReadResponse() (*Response, error) {
	line, err := r.line()
	if err != nil {
		return nil, err
	}
	var resp Response
	if err := decode(line, &resp); err != nil {
		return nil, &MalformedError{ID: resp.ID, Err: err}
	}
	if err := resp.Validate(); err != nil {
		return nil, &MalformedError{ID: resp.ID, Err: err}
	}
	return &resp, nil
}

// Write writes m (a *Request or *Response) as one line to w.
func Write(w io.Writer, m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > MaxLine {
		return fmt.Errorf("message of %d bytes is longer than %d", len(b), MaxLine)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
