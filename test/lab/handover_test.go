package lab

import "testing"

func TestHandoverLosses(t *testing.T) {
	r := Result{Attempts: []Attempt{
		{OK: true},
		{Err: "dial tcp 192.0.2.100:8080: connect: connection reset by peer"},
		{Err: "timeout"},
		{OK: true},
		{Err: "read tcp 192.0.2.51:40000->192.0.2.100:8080: read: connection reset by peer"},
		{Err: "dial tcp 192.0.2.100:8080: connect: connection refused"},
	}}
	losses, straddles := r.HandoverLosses()
	if losses != 2 || straddles != 2 {
		t.Errorf("HandoverLosses() = %d losses, %d straddles; want 2 (timeout, refused) and 2 (the resets)", losses, straddles)
	}
}
