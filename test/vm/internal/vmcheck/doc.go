// Package vmcheck holds the tests that test/vm boots to prove its VM: IPVS,
// network namespaces, veth, bridges and nftables with NAT work inside. They
// skip outside the VM. Two tests misbehave on request, to prove that the
// runner reports failures (VMCHECK_FAIL=1) and kills a hung VM
// (VMCHECK_HANG=1).
package vmcheck
