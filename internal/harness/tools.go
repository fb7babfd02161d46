package harness

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Root returns the repository's root: the nearest directory at or above the working directory
// that holds go.mod (a test binary runs in its package's directory).
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory: run from inside the repository")
		}
		dir = parent
	}
}

// Install is how a missing tool is provided: a script of the repository (relative to its root),
// its arguments and extra environment variables (KEY=value).
type Install struct {
	Script string
	Args   []string
	Env    []string
}

func (in Install) String() string {
	return strings.TrimSpace(strings.Join(in.Env, " ") + " " + strings.Join(append([]string{in.Script}, in.Args...), " "))
}

// Provide is the one policy for a tool the tests need: find returns its path; when it fails,
// Provide runs the install script (one install at a time on the machine, so test binaries
// running in parallel do not race for apt's lock) and finds the tool again. When the tool is
// still missing it returns an error that says what to run. It never lets a caller skip.
func Provide(what string, find func() (string, error), install Install) (string, error) {
	if path, err := find(); err == nil {
		return path, nil
	}
	root, err := Root()
	if err != nil {
		return "", fmt.Errorf("%s is missing and the repository (for %s) is not found: %w", what, install, err)
	}
	unlock, err := lockInstalls()
	if err != nil {
		return "", err
	}
	defer unlock()
	if path, err := find(); err == nil { // another test binary installed it meanwhile
		return path, nil
	}
	cmd := exec.CommandContext(context.Background(), filepath.Join(root, install.Script), install.Args...) //nolint:gosec // a script of the repository
	cmd.Dir = root
	cmd.Env = append(os.Environ(), install.Env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "harness: %s is missing; running %s\n", what, install)
	runErr := cmd.Run()
	path, err := find()
	if err == nil {
		return path, nil
	}
	if runErr == nil {
		runErr = errors.New("it succeeded")
	}
	return "", fmt.Errorf("%s is missing and `%s` did not provide it (%w): run it yourself (as root, or with sudo), then run the tests again: %w",
		what, install, runErr, err)
}

// Tool returns the path of the command name on PATH; when it is missing, it installs the Debian
// package debianPackage with hack/apt-install.sh (apt-get as root or through sudo), or fails
// saying what to run.
func Tool(name, debianPackage string) (string, error) {
	return Provide(name, func() (string, error) { return exec.LookPath(name) },
		Install{Script: "hack/apt-install.sh", Args: []string{debianPackage}})
}

// lockInstalls takes a machine-wide lock (a file lock in the temporary directory) for the time
// of one install.
func lockInstalls() (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "latchkey-harness-install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// BuildBinary builds the latchkey binary (`go build -o <dir>/latchkey .` at the repository's
// root) and returns its path. A test package calls it once, from TestMain, into a directory it
// removes at exit; the Go build cache makes every build after the first cheap.
func BuildBinary(dir string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "latchkey")
	build := exec.CommandContext(context.Background(), "go", "build", "-o", bin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build latchkey: %w: %s", err, out)
	}
	return bin, nil
}
