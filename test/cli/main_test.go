package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

var binary string //nolint:gochecknoglobals // built once in TestMain

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "latchkey-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cli:", err)
		return 1
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // best effort at exit
	if binary, err = harness.BuildBinary(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "cli:", err)
		return 1
	}
	return m.Run()
}

// result is what a run of the binary left.
type result struct {
	code           int
	stdout, stderr string
}

// runTimeout bounds one run: every command here ends by itself.
const runTimeout = 60 * time.Second

// latchkey runs the binary with args and stdin, as from a shell of a user who has no cluster
// configured: no $KUBECONFIG, no ~/.kube/config, not in a Pod; env adds variables.
func latchkey(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(userEnv(t), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run latchkey %s: %v", strings.Join(args, " "), err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// userEnv is the test's environment without a cluster: HOME is an empty folder.
func userEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "HOME", "POD_NAMESPACE":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+t.TempDir())
}
