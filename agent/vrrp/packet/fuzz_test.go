package packet

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzAdvertDecode: unmarshal never panics, and whatever it accepts
// Marshal encodes and unmarshal decodes back to the same advert, with a
// valid checksum and the same bytes apart from the checksum and the v3
// reserved bits (the decoder checks the count against the length, never
// indexes by it: a lying count is the first thing a fuzzer finds).
// Seeds: the keepalived captures, plus testdata/fuzz/FuzzAdvertDecode.
func FuzzAdvertDecode(f *testing.F) {
	for _, p := range goldenPackets(f) {
		f.Add(p.Payload)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := unmarshal(b)
		if err != nil {
			return
		}
		src, dst := srcV4, dstV4
		if a.Addrs[0].Is6() {
			src, dst = srcV6, dstV6
		}
		enc, err := a.Marshal(src, dst, ChecksumRFC9568)
		if err != nil {
			t.Fatalf("Marshal of an accepted advert %+v: %v", a, err)
		}
		back, err := unmarshal(enc)
		if err != nil {
			t.Fatalf("unmarshal(Marshal(%+v)) = %v", a, err)
		}
		if diff := cmp.Diff(a, back, cmpOpts...); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		in := append([]byte(nil), b...)
		in[6], in[7], enc[6], enc[7] = 0, 0, 0, 0
		if a.Version == 3 {
			in[4] &= 0x0f
		}
		if !bytes.Equal(in, enc) {
			t.Fatalf("re-encoded\n % x\nfrom\n % x", enc, b)
		}
	})
}

// FuzzReceiveChecks: Parse, detectChecksumMode and Check never panic,
// and an advert Parse accepts is one unmarshal accepts too.
func FuzzReceiveChecks(f *testing.F) {
	for _, p := range goldenPackets(f) {
		f.Add(p.Payload, p.Src.AsSlice(), p.Dst.AsSlice(), p.TTL, "vipvs123", false, uint8(3))
	}
	f.Add([]byte{0x31, 0x01}, []byte{1, 2, 3}, []byte(nil), 255, "", true, uint8(2))
	f.Fuzz(func(t *testing.T, payload, src, dst []byte, ttl int, password string, owner bool, version uint8) {
		s, _ := netip.AddrFromSlice(src)
		d, _ := netip.AddrFromSlice(dst)
		r := Received{Payload: payload, Src: s, Dst: d, TTL: ttl}
		detectChecksumMode(r)
		a, drop := Parse(r)
		if drop == DropNone {
			u, err := unmarshal(payload)
			if err != nil {
				t.Fatalf("Parse accepted what unmarshal rejects: %v", err)
			}
			if diff := cmp.Diff(u, a, cmpOpts...); diff != "" {
				t.Fatalf("Parse and unmarshal differ (-unmarshal +Parse):\n%s", diff)
			}
		}
		if drop.String() == "unknown" {
			t.Fatalf("Parse returned an unnamed reason %d", int(drop))
		}
		for _, want := range []Expect{
			{Version: int(version), VRID: a.VRID, Interval: a.Interval, Password: password, Addrs: a.Addrs, Owner: owner},
			{Version: 3, VRID: 51, Interval: time.Second, Addrs: []netip.Addr{vip4}},
			{},
		} {
			if r := Check(a, want); r.String() == "unknown" {
				t.Fatalf("Check returned an unnamed reason %d", int(r))
			}
		}
	})
}
