package packet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// capturedVRRP is one VRRP packet of a capture, with what the IP header
// said about it.
type capturedVRRP struct {
	index int // record number in the file, from 0
	Received
}

// readVRRP reads a classic pcap file (either byte order, micro- or
// nanosecond timestamps), or a pcapng file (editcap writes one whatever the
// file name: the 10 ms capture is pcapng), of Ethernet frames and returns its VRRP packets:
// IPv4 protocol 112 and IPv6 next header 112 (no extension headers), with
// the payload cut at the IP length so that Ethernet padding is left out.
func readVRRP(t testing.TB, path string) []capturedVRRP {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading capture: %v", err)
	}
	pkts, err := parsePcap(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pkts
}

func parsePcap(data []byte) ([]capturedVRRP, error) {
	if len(data) >= 4 && binary.BigEndian.Uint32(data) == pcapngSHB {
		return parsePcapng(data)
	}
	if len(data) < 24 {
		return nil, fmt.Errorf("pcap: %d bytes, no global header", len(data))
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(data[0:4]) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return nil, fmt.Errorf("pcap: bad magic % x", data[0:4])
	}
	if lt := order.Uint32(data[20:24]) & 0x0fffffff; lt != 1 {
		return nil, fmt.Errorf("pcap: link type %d, want 1 (Ethernet)", lt)
	}
	var out []capturedVRRP
	for i, rest := 0, data[24:]; len(rest) > 0; i++ {
		if len(rest) < 16 {
			return nil, fmt.Errorf("pcap: record %d: truncated header", i)
		}
		n := int(order.Uint32(rest[8:12]))
		if n > len(rest)-16 {
			return nil, fmt.Errorf("pcap: record %d: %d bytes, %d left", i, n, len(rest)-16)
		}
		frame := rest[16 : 16+n]
		rest = rest[16+n:]
		if r, ok := vrrpFromEthernet(frame); ok {
			out = append(out, capturedVRRP{index: i, Received: r})
		}
	}
	return out, nil
}

const pcapngSHB = 0x0a0d0d0a // Section Header Block type, a palindrome

// parsePcapng reads the Enhanced and Simple Packet Blocks of a pcapng file
// (draft-ietf-opsawg-pcapng), each section in its own byte order.
func parsePcapng(data []byte) ([]capturedVRRP, error) {
	var (
		order    binary.ByteOrder = binary.LittleEndian
		linkType []uint16         // per interface of the current section
		out      []capturedVRRP
	)
	for i, rest := 0, data; len(rest) > 0; i++ {
		if len(rest) < 12 {
			return nil, fmt.Errorf("pcapng: block %d: truncated header", i)
		}
		if binary.BigEndian.Uint32(rest) == pcapngSHB {
			switch binary.LittleEndian.Uint32(rest[8:12]) {
			case 0x1a2b3c4d:
				order = binary.LittleEndian
			case 0x4d3c2b1a:
				order = binary.BigEndian
			default:
				return nil, fmt.Errorf("pcapng: block %d: bad byte-order magic", i)
			}
			linkType = nil
		}
		typ, n := order.Uint32(rest[0:4]), int(order.Uint32(rest[4:8]))
		if n < 12 || n%4 != 0 || n > len(rest) {
			return nil, fmt.Errorf("pcapng: block %d: length %d, %d left", i, n, len(rest))
		}
		body := rest[8 : n-4]
		rest = rest[n:]
		var frame []byte
		switch typ {
		case 1: // Interface Description Block
			if len(body) < 2 {
				return nil, fmt.Errorf("pcapng: block %d: short interface description", i)
			}
			linkType = append(linkType, order.Uint16(body[0:2]))
			continue
		case 6: // Enhanced Packet Block
			if len(body) < 20 {
				return nil, fmt.Errorf("pcapng: block %d: short packet block", i)
			}
			ifc, caplen := int(order.Uint32(body[0:4])), int(order.Uint32(body[12:16]))
			if ifc >= len(linkType) || caplen > len(body)-20 {
				return nil, fmt.Errorf("pcapng: block %d: bad interface %d or length %d", i, ifc, caplen)
			}
			if linkType[ifc] != 1 {
				return nil, fmt.Errorf("pcapng: block %d: link type %d, want 1 (Ethernet)", i, linkType[ifc])
			}
			frame = body[20 : 20+caplen]
		case 3: // Simple Packet Block: interface 0, whole body after the length
			if len(body) < 4 || len(linkType) == 0 || linkType[0] != 1 {
				return nil, fmt.Errorf("pcapng: block %d: bad simple packet block", i)
			}
			frame = body[4:]
		default:
			continue
		}
		if r, ok := vrrpFromEthernet(frame); ok {
			out = append(out, capturedVRRP{index: i, Received: r})
		}
	}
	return out, nil
}

func vrrpFromEthernet(f []byte) (Received, bool) {
	if len(f) < 14 {
		return Received{}, false
	}
	et, ip := binary.BigEndian.Uint16(f[12:14]), f[14:]
	if et == 0x8100 && len(f) >= 18 { // one 802.1Q tag
		et, ip = binary.BigEndian.Uint16(f[16:18]), f[18:]
	}
	switch et {
	case 0x0800:
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != Protocol {
			return Received{}, false
		}
		ihl, total := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:4]))
		if ihl < 20 || total < ihl || total > len(ip) {
			return Received{}, false
		}
		return Received{
			Payload: ip[ihl:total],
			Src:     netip.AddrFrom4([4]byte(ip[12:16])),
			Dst:     netip.AddrFrom4([4]byte(ip[16:20])),
			TTL:     int(ip[8]),
		}, true
	case 0x86dd:
		if len(ip) < 40 || ip[0]>>4 != 6 || ip[6] != Protocol {
			return Received{}, false
		}
		plen := int(binary.BigEndian.Uint16(ip[4:6]))
		if 40+plen > len(ip) {
			return Received{}, false
		}
		return Received{
			Payload: ip[40 : 40+plen],
			Src:     netip.AddrFrom16([16]byte(ip[8:24])),
			Dst:     netip.AddrFrom16([16]byte(ip[24:40])),
			TTL:     int(ip[7]),
		}, true
	}
	return Received{}, false
}

// goldenPackets returns the VRRP payloads of every capture, to seed fuzzers.
func goldenPackets(t testing.TB) []capturedVRRP {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "keepalived", "*.pcap"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in testdata/keepalived: %v", err)
	}
	var all []capturedVRRP
	for _, f := range files {
		pkts := readVRRP(t, f)
		// The 10 ms capture repeats one advert 200 times: a few suffice.
		all = append(all, pkts[:min(len(pkts), 3)]...)
		all = append(all, pkts[len(pkts)-1])
	}
	return all
}

func TestParsePcapByteOrders(t *testing.T) {
	// One record holding a v2 advert, written in both byte orders.
	adv := Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("224.0.0.18")
	payload, err := adv.Marshal(src, dst, ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 14+20)
	binary.BigEndian.PutUint16(frame[12:], 0x0800)
	frame[14] = 0x45
	binary.BigEndian.PutUint16(frame[16:], uint16(20+len(payload)))
	frame[14+8], frame[14+9] = 255, Protocol
	copy(frame[14+12:], src.AsSlice())
	copy(frame[14+16:], dst.AsSlice())
	frame = append(frame, payload...)
	frame = append(frame, make([]byte, 60-len(frame))...) // Ethernet padding

	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			file := make([]byte, 24+16)
			order.PutUint32(file[0:], 0xa1b2c3d4)
			order.PutUint16(file[4:], 2)
			order.PutUint16(file[6:], 4)
			order.PutUint32(file[16:], 65535)
			order.PutUint32(file[20:], 1)
			order.PutUint32(file[24+8:], uint32(len(frame)))
			order.PutUint32(file[24+12:], uint32(len(frame)))
			file = append(file, frame...)
			pkts, err := parsePcap(file)
			if err != nil {
				t.Fatal(err)
			}
			want := []capturedVRRP{{index: 0, Received: Received{Payload: payload, Src: src, Dst: dst, TTL: 255}}}
			if diff := cmp.Diff(want, pkts, append(cmpOpts, cmp.AllowUnexported(capturedVRRP{}))...); diff != "" {
				t.Errorf("parsePcap (-want +got):\n%s", diff)
			}
		})
	}
}
