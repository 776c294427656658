package lab

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// DeleteLink deletes h's veth pair (eth0 and its bridge port), as a NIC
// driver reload, a bond or VLAN re-created by NetworkManager or an SR-IOV
// reset does: eth0 and its addresses (VIPs included) are gone until
// CreateLink.
func (h *Host) DeleteLink() error {
	port, err := h.lab.sw.nl.LinkByName(h.Name)
	if err != nil {
		return fmt.Errorf("finding bridge port %s: %w", h.Name, err)
	}
	if err := h.lab.sw.nl.LinkDel(port); err != nil {
		return fmt.Errorf("deleting veth %s/%s: %w", h.Name, h.IfName, err)
	}
	return WaitFor(setupTimeout, h.Name+": "+h.IfName+" gone", func() (bool, error) {
		_, err := h.nl.LinkByName(h.IfName)
		var nf netlink.LinkNotFoundError
		return errors.As(err, &nf), nil
	})
}

// CreateLink creates h's veth pair again after DeleteLink, under the same
// names, with the same MAC and node addresses (not the VIPs): eth0 has a
// new index. It waits until eth0 is up with its link-local address.
func (h *Host) CreateLink() error {
	if err := h.lab.wire(h); err != nil {
		return err
	}
	return h.waitReady(setupTimeout)
}

// IfIndex returns the current index of h's eth0 (it changes with
// DeleteLink and CreateLink).
func (h *Host) IfIndex() (int, error) {
	l, err := h.link()
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}
