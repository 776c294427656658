// Package version holds the build version of every vipvs command. It imports
// nothing, so any package (the agent, the day-0 renderer, the operator) can
// read the version without linking the others.
package version

// Version is the build version, set at link time with
// -ldflags '-X github.com/vipvs/vipvs/version.Version=...'.
var Version = "dev"
