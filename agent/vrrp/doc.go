// Package vrrp is the VRRP state machine of RFC 9568 (VRRPv3) and RFC 3768
// (VRRPv2), with the clock and all I/O kept outside.
//
// A Router is pure: Handle takes the current time and one Event and returns the
// Actions the caller must carry out (send an advertisement, take or release the
// VIPs, announce them); Deadline says when the router next needs a TimerFired
// event. It never reads a clock, never blocks and does no I/O, so every rule of
// the RFC is a table test. A Runner (runner.go) drives one Router with a real
// or fake clock, a Sender and a VIP holder.
//
// Beyond the RFC, a Router yields only to a router that is really there
// (peers.go): a peer is its address and the MAC pinned from its adverts or
// the neighbour table (PeerMAC), multicast mode may have an allowlist,
// priority 0 counts only from the current master's address and MAC, and a
// master that yields keeps its VIPs until the winner has announced them
// (Announced; Config.AwaitAnnouncement) or is found an impostor. Ignored
// adverts come out as Dropped actions, impostors, duplicate owners and
// stalls as Alarm actions; see docs/faults.md.
//
// Protocol code uses the RFC's words: Initialize, Backup and Active. The
// keepalived words users know (MASTER, BACKUP, FAULT) are produced at the
// boundary by State.Keepalived.
package vrrp
