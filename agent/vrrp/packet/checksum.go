package packet

import "net/netip"

// checksum returns the checksum to put into b, a VRRP message whose
// checksum field is zero: the 16-bit one's complement of the one's
// complement sum (RFC 1071) over, for v3, a pseudo-header and the message
// (RFC 9568 §5.2.8), for v2 the message only (RFC 3768 §5.3.8).
func checksum(b []byte, version int, src, dst netip.Addr, mode ChecksumMode) uint16 {
	return ^fold(sumWithPseudo(b, version, src, dst, mode))
}

// verify reports whether the checksum of b, as received, is valid.
func verify(b []byte, version int, src, dst netip.Addr, mode ChecksumMode) bool {
	return fold(sumWithPseudo(b, version, src, dst, mode)) == 0xffff
}

func sumWithPseudo(b []byte, version int, src, dst netip.Addr, mode ChecksumMode) uint32 {
	var s uint32
	if version == 3 {
		switch {
		case src.Is6():
			// RFC 8200 §8.1: source, destination, 32-bit upper-layer
			// length, 24 zero bits, next header.
			s = sum(s, src.AsSlice())
			s = sum(s, dst.AsSlice())
			s += uint32(len(b)>>16) + uint32(len(b)&0xffff)
			s += Protocol
		case mode == ChecksumPseudoHeader:
			// RFC 768-style IPv4 pseudo-header: source, destination,
			// zero, protocol, 16-bit length.
			s = sum(s, src.AsSlice())
			s = sum(s, dst.AsSlice())
			s += Protocol
			s += uint32(len(b) & 0xffff)
		}
	}
	return sum(s, b)
}

// sum adds b as big-endian 16-bit words (an odd last byte padded with
// zero) to the running one's complement sum s.
func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
		// Fold early so that s cannot overflow whatever the length.
		if s >= 1<<31 {
			s = s&0xffff + s>>16
		}
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold reduces a running sum to 16 bits with end-around carry.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
