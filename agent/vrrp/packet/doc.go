// Package packet encodes and decodes VRRP advertisements and applies the
// receive checks that RFC 9568 §7.1 (VRRPv3, which obsoletes RFC 5798) and
// RFC 3768 §7.1 (VRRPv2) require of every received advertisement.
//
// It is pure code: no sockets, no clock, no logging. The transport hands over
// one [Received] packet; [Parse] applies the checks that do not depend on a
// configured virtual router and [Check] those that do. A packet that fails a
// check is not an error but a [DropReason], which callers count and log.
//
// Wire formats:
//   - VRRPv3 (RFC 9568 §5.1): 8-byte header with a 12-bit Max Advertise
//     Interval in centiseconds, then 1-255 IPv4 or IPv6 addresses. The
//     checksum covers an IPv6 pseudo-header (RFC 8200 §8.1). For IPv4,
//     RFC 9568 §5.2.8 leaves the pseudo-header out, but keepalived and FRR
//     include the IPv4 pseudo-header by default; [Advert.Marshal] sends
//     either ([ChecksumMode]) and [Parse] accepts both.
//   - VRRPv2 (RFC 3768 §5.3): 8-byte header with an 8-bit Adver Int in
//     seconds and an Auth Type, 1-255 IPv4 addresses, then 8 bytes of
//     Authentication Data (the simple text password of RFC 2338 §5.3.6,
//     which RFC 3768 removed but keepalived deployments still use). The checksum covers
//     the VRRP message only.
package packet
