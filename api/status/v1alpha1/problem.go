package v1alpha1

import "errors"

// Code says what kind of problem a Problem is. Programs branch on it; the
// other fields of the Problem say where.
type Code string

// Problem codes.
const (
	// CodeVIPNotInSubnet: router Router names no interface and no interface
	// of the node has an address in the subnet of its VIP VIP, so the
	// router does not run. Fix: set the router's interface, or use a VIP of
	// the nodes' subnet.
	CodeVIPNotInSubnet Code = "VIPNotInSubnet"
	// CodeInterfaceUnavailable: the interface Interface that router Router
	// needs (for VIP VIP) cannot be found or read.
	CodeInterfaceUnavailable Code = "InterfaceUnavailable"
	// CodeConfigInvalid: the config file could not be read, decoded or
	// validated (Field, when set, is the field's path in the file); the
	// agent keeps running the previous one.
	CodeConfigInvalid Code = "ConfigInvalid"
	// CodeApplyFailed: the config is valid but (part of) it could not be
	// applied; Message says why.
	CodeApplyFailed Code = "ApplyFailed"
)

// Problem is one reason why the agent does not run (all of) its newest
// config. It is an error, so that the code that finds a problem returns it
// and ProblemsOf collects it, code and fields intact.
type Problem struct {
	// Code is the kind of problem.
	Code Code `json:"code"`
	// Router is the virtual router concerned, if one is.
	Router string `json:"router,omitempty"`
	// VIP is the virtual IP address concerned, if one is (no prefix length).
	VIP string `json:"vip,omitempty"`
	// Interface is the network interface concerned, if one is.
	Interface string `json:"interface,omitempty"`
	// Field is the path of the config file's field concerned, if one is.
	Field string `json:"field,omitempty"`
	// Message says, for people, what is wrong and what to do.
	Message string `json:"message"`
}

// Error returns the Message.
func (p *Problem) Error() string { return p.Message }

// ProblemsOf returns the problems err stands for: every *Problem in its
// tree (errors.Join lists, %w wrapping), each with the Message of the
// outermost error that wraps only it (so that the context added on the way
// up is kept), and for a branch without one a Problem of code fallback
// whose Message is the branch's text. nil for nil.
func ProblemsOf(err error, fallback Code) []Problem {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []Problem
		for _, e := range j.Unwrap() {
			out = append(out, ProblemsOf(e, fallback)...)
		}
		return out
	}
	var p *Problem
	if errors.As(err, &p) {
		// errors.As also descends into joined errors below a wrapper:
		// take that path only when the chain to p is a single one.
		if single(err) {
			q := *p
			q.Message = err.Error()
			return []Problem{q}
		}
		return ProblemsOf(unwrapToJoin(err), fallback)
	}
	return []Problem{{Code: fallback, Message: err.Error()}}
}

// single reports whether err's chain has no errors.Join list.
func single(err error) bool {
	for err != nil {
		if _, ok := err.(interface{ Unwrap() []error }); ok {
			return false
		}
		err = errors.Unwrap(err)
	}
	return true
}

// unwrapToJoin follows err's single-wrap chain to the first joined error.
func unwrapToJoin(err error) error {
	for err != nil {
		if _, ok := err.(interface{ Unwrap() []error }); ok {
			return err
		}
		err = errors.Unwrap(err)
	}
	return nil
}
