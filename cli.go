package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The command line's contract with scripts: exit 0 on success (and for -h/--help), 1 when the
// command ran and failed, 2 when it was called wrongly (an unknown command or flag, a flag
// value that does not parse, a stray argument). Errors go to stderr, help to stdout.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `latchkey is a Kubernetes-native OAuth 2.0 and OpenID Connect authorization server.

Usage:
  latchkey serve [flags]          run the server, in one of two modes:
                                    --manifests DIR    embedded: no cluster, the resources are read
                                                       from a folder (make run)
                                    --kubeconfig FILE  operator: against a Kubernetes cluster (in a
                                                       Pod: the in-cluster config, no flag needed)
  latchkey hash-password [flags]  hash a User's password (bcrypt; --argon2id) for its Secret
  latchkey version                print the version (also latchkey --version)

Run 'latchkey COMMAND --help' for the flags of a command.
`

// errHelpShown: -h or --help was asked for and the help was printed; the exit status is 0.
var errHelpShown = errors.New("help shown")

// usageError is a command called wrongly; main exits 2 and points at the command's help.
type usageError struct {
	command string // "" for latchkey itself
	err     error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitCode prints err to stderr as a user reads it and returns the process's exit status.
func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return exitOK
	case errors.As(err, &ue):
		help := "latchkey --help"
		if ue.command != "" {
			help = "latchkey " + ue.command + " --help"
		}
		fmt.Fprintf(stderr, "latchkey: %v\nRun '%s' for usage.\n", ue.err, help)
		return exitUsage
	}
	fmt.Fprintln(stderr, "latchkey:", err)
	return exitError
}

// run runs the command named by args[0].
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{err: errors.New("missing command")}
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "hash-password":
		return hashPassword(args[1:], stdin, stdout, stderr)
	case "version", "--version", "-version":
		return printVersion(args[1:], stdout, stderr)
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, usage)
		return errHelpShown
	}
	return &usageError{err: fmt.Errorf("unknown command %q (commands: serve, hash-password, version)", args[0])}
}

// parseFlags parses the flags of one command. -h/--help prints synopsis and the flags to
// stdout (errHelpShown); a bad flag, a flag value that does not parse or an argument that is not
// a flag is a usageError. Duration flags explain their format when a value does not parse.
func parseFlags(fs *flag.FlagSet, args []string, synopsis string, stdout io.Writer) error {
	var failed error
	explainDurations(fs, &failed)
	fs.SetOutput(io.Discard) // the errors are returned, the help printed below
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, synopsis)
		fmt.Fprintln(stdout, "\nFlags:")
		printFlags(stdout, fs)
		return errHelpShown
	case failed != nil:
		return &usageError{command: fs.Name(), err: failed}
	case err != nil:
		return &usageError{command: fs.Name(), err: err}
	case fs.NArg() > 0:
		return &usageError{command: fs.Name(), err: strayArgument(fs)}
	}
	return nil
}

// strayArgument explains the first argument that is not a flag: a command takes flags only.
func strayArgument(fs *flag.FlagSet) error {
	arg := fs.Arg(0)
	msg := fmt.Sprintf("unexpected argument %q: latchkey %s takes flags only", arg, fs.Name())
	if fs.Lookup("manifests") != nil {
		if fi, err := os.Stat(arg); err == nil && fi.IsDir() {
			msg += fmt.Sprintf(" (to serve the manifests of that folder: --manifests %s)", arg)
		}
	}
	if strings.HasPrefix(arg, "-") {
		msg += " (a flag after an argument is not read)"
	}
	return errors.New(msg)
}

// explainDurations replaces the flag package's "parse error" of every duration flag of fs with
// a message naming the flag, the value and the format; the first failure is stored in failed.
func explainDurations(fs *flag.FlagSet, failed *error) {
	fs.VisitAll(func(f *flag.Flag) {
		if g, ok := f.Value.(flag.Getter); ok {
			if _, isDuration := g.Get().(time.Duration); isDuration {
				f.Value = &durationValue{Getter: g, name: f.Name, failed: failed}
			}
		}
	})
}

// durationValue is a duration flag whose parse errors say what a duration looks like.
type durationValue struct {
	flag.Getter
	name   string
	failed *error
}

func (d *durationValue) Set(s string) error {
	if _, err := time.ParseDuration(s); err != nil {
		err = fmt.Errorf("--%s %q is not a duration: write a number with a unit, such as 90s, 15m or 1h (units: ns, us, ms, s, m, h)", d.name, s)
		if *d.failed == nil {
			*d.failed = err
		}
		return err
	}
	return d.Getter.Set(s)
}

// printFlags is flag.PrintDefaults with the double dashes the README and the errors use.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		if _, ok := f.Value.(*durationValue); ok {
			typ = "duration"
		}
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		switch f.DefValue {
		case "", "0", "false", "0s", "[]":
		default:
			if typ == "string" {
				usage += fmt.Sprintf(" (default %q)", f.DefValue)
			} else {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
	})
}
