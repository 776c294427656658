// Package vip adds, removes and keeps the virtual IP addresses (VIPs) that a
// vipvs agent holds, through rtnetlink (RTM_NEWADDR / RTM_DELADDR, rtnetlink(7)).
//
// IPv6 VIPs are added with IFA_F_NODAD (RFC 4862 §5.4 duplicate address
// detection is skipped) so that they are usable at once: the VRRP protocol
// already guarantees that one router holds the address.
//
// A Manager remembers which VIPs it holds. While Run is running, a held VIP
// that something else deletes (NetworkManager, an administrator, a link
// flap for IPv6) is put back, on the netlink notification and on a periodic
// re-check, since netlink multicast notifications can be lost on overflow.
// A VIP released with Remove is never put back.
package vip
