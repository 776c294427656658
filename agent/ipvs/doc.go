// Package ipvs programs the kernel's IPVS table declaratively: the agent
// states the virtual services it wants (Service, Real), Diff computes the
// minimal operations between that and the kernel's table (a pure function,
// golden-tested), and a Programmer over github.com/moby/ipvs reads the table
// and applies a Plan. A Reconciler ties them together: Reconcile reads the
// whole table, ReconcileChanged only what changed since it last applied.
// When to reconcile is the caller's: package balancer reconciles fully at
// start and on its resync timer, so that a service deleted by someone else
// (kube-proxy in IPVS mode deletes services it does not know) comes back,
// and incrementally on every change of the desired state.
//
// Ownership: the agent adds, updates and deletes only services it owns,
// that is those in its desired state and those it desired earlier (so that
// a service removed from the configuration is deleted). A Record
// (OwnedFile) keeps what it owns across restarts, so that a service removed
// from the configuration while the agent was down is deleted too. Services
// of others, kube-proxy's or a human's, are never touched, even on the same
// VIP.
//
// The IPVS table is per network namespace; New opens a handle in the
// caller's, NewAt in another. Where the kernel has no IPVS, New returns
// ErrNoIPVS: moby/ipvs itself would open a handle whose calls silently do
// nothing.
package ipvs
