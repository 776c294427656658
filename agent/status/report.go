package status

import v1alpha1 "github.com/vipvs/vipvs/api/status/v1alpha1"

// The agent's status document is the status contract's AgentReport
// (package github.com/vipvs/vipvs/api/status/v1alpha1, which documents
// every field); these names let the agent's packages say status.Report.
type (
	// Report is v1alpha1.Report.
	Report = v1alpha1.Report
	// Router is v1alpha1.Router.
	Router = v1alpha1.Router
	// Conflict is v1alpha1.Conflict.
	Conflict = v1alpha1.Conflict
	// Check is v1alpha1.Check.
	Check = v1alpha1.Check
	// TrackCheck is v1alpha1.TrackCheck.
	TrackCheck = v1alpha1.TrackCheck
	// IPVS is v1alpha1.IPVS.
	IPVS = v1alpha1.IPVS
	// RealServer is v1alpha1.RealServer.
	RealServer = v1alpha1.RealServer
	// ConnectionSync is v1alpha1.ConnectionSync.
	ConnectionSync = v1alpha1.ConnectionSync
)

// IPVS states: v1alpha1.IPVSActive, IPVSUnavailable and IPVSFailing.
const (
	IPVSActive      = v1alpha1.IPVSActive
	IPVSUnavailable = v1alpha1.IPVSUnavailable
	IPVSFailing     = v1alpha1.IPVSFailing
)

// Connection sync states: v1alpha1.SyncRunning, SyncDisabled and SyncFailing.
const (
	SyncRunning  = v1alpha1.SyncRunning
	SyncDisabled = v1alpha1.SyncDisabled
	SyncFailing  = v1alpha1.SyncFailing
)
