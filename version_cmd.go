package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is stamped at build time with -ldflags "-X main.version=..." (make build, the
// Dockerfile); unstamped, the module version from the build info is used (go install), else
// "dev".
var version string //nolint:gochecknoglobals // set by the linker

// buildInfo is what `latchkey version` prints.
type buildInfo struct {
	Version   string
	Revision  string // VCS commit, "" when unknown
	Time      string // commit time
	Modified  bool   // built from a tree with uncommitted changes
	GoVersion string
	Platform  string
}

// readBuildInfo combines the stamped version with what the Go toolchain recorded.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

func (b buildInfo) write(w io.Writer) {
	fmt.Fprintf(w, "latchkey %s\n", b.Version)
	if b.Revision != "" {
		commit := b.Revision
		if b.Time != "" {
			commit += " (" + b.Time + ")"
		}
		if b.Modified {
			commit += " with uncommitted changes"
		}
		fmt.Fprintf(w, "commit: %s\n", commit)
	}
	fmt.Fprintf(w, "go: %s %s\n", b.GoVersion, b.Platform)
}

// printVersion is `latchkey version` (and `latchkey --version`).
func printVersion(args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parseFlags(fs, args, "Usage: latchkey version\n\nPrints the version of latchkey, its commit and the Go version it was built with.\n", stdout); err != nil {
		return err
	}
	readBuildInfo().write(stdout)
	return nil
}
