package v1alpha1

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written in YAML and JSON as a Go duration
// string ("10ms", "1s", "1m30s").
//
// It has the shape and wire format of k8s.io/apimachinery's metav1.Duration
// (an embedded time.Duration named Duration), so that the two convert with
// Duration{Duration: d.Duration}. It is declared here so that the agent does
// not depend on the apimachinery meta/v1 package and its dependencies.
type Duration struct {
	time.Duration
}

// UnmarshalJSON implements json.Unmarshaler; it accepts a string that
// time.ParseDuration accepts.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"1s\" or \"10ms\": %w", err)
	}
	pd, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("parsing duration: %w", err)
	}
	d.Duration = pd
	return nil
}

// MarshalJSON implements json.Marshaler; it writes time.Duration.String().
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.Duration.String())
}
