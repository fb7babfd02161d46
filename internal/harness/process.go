package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Command is what a Process runs.
type Command struct {
	// Name names the process in errors; default the base name of Path.
	Name string
	Path string
	Args []string
	// Env holds extra environment variables (KEY=value) on top of the test's.
	Env []string
	// Log is the file that stdout and stderr are appended to (created when missing).
	Log string
}

// Process is a started Command. Its methods are safe for concurrent use.
type Process struct {
	cmd Command

	mu     sync.Mutex
	run    *exec.Cmd
	exited chan struct{}
	err    error
}

// Start starts the command; it does not wait for anything.
func Start(c Command) (*Process, error) {
	if c.Name == "" {
		c.Name = filepath.Base(c.Path)
	}
	p := &Process{cmd: c}
	if err := p.launch(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Process) launch() error {
	logFile, err := os.OpenFile(p.cmd.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// Stop and Kill end the process, not a context.
	run := exec.CommandContext(context.Background(), p.cmd.Path, p.cmd.Args...) //nolint:gosec // the test's own command
	if len(p.cmd.Env) > 0 {
		run.Env = append(os.Environ(), p.cmd.Env...)
	}
	run.Stdout, run.Stderr = logFile, logFile
	if err := run.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start %s: %w", p.cmd.Name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.run, p.exited, p.err = run, exited, nil
	p.mu.Unlock()
	go func() {
		err := run.Wait()
		_ = logFile.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

func (p *Process) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run, p.exited
}

// Name is the process's name in errors.
func (p *Process) Name() string { return p.cmd.Name }

// LogPath is the file the process logs to.
func (p *Process) LogPath() string { return p.cmd.Log }

// Exited is closed when the process (its latest start) has exited.
func (p *Process) Exited() <-chan struct{} {
	_, exited := p.current()
	return exited
}

// Err is the process's wait error once it has exited (nil for exit status 0).
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// ExitCode is the exit code once the process has exited, -1 before or when a signal ended it.
func (p *Process) ExitCode() int {
	run, exited := p.current()
	select {
	case <-exited:
		return run.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error {
	run, _ := p.current()
	return run.Process.Signal(sig)
}

// Kill SIGKILLs the process and waits for it to exit; a process that has exited is left alone.
func (p *Process) Kill() error {
	run, exited := p.current()
	select {
	case <-exited:
		return nil
	default:
	}
	if err := run.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-exited
	return nil
}

// Stop interrupts the process (SIGINT) and waits for it to exit; when it has not exited within
// timeout it is killed.
func (p *Process) Stop(timeout time.Duration) {
	run, exited := p.current()
	select {
	case <-exited:
		return
	default:
	}
	_ = run.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(timeout):
		_ = run.Process.Kill()
		<-exited
	}
}

// Restart starts a process that has exited (killed or stopped) again, with the same command,
// appending to the same log. It does not wait for readiness.
func (p *Process) Restart() error {
	select {
	case <-p.Exited():
	default:
		return fmt.Errorf("restart %s: it is still running", p.cmd.Name)
	}
	return p.launch()
}

// Log returns the whole log.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.cmd.Log)
	if err != nil {
		return fmt.Sprintf("(log %s unreadable: %v)", p.cmd.Log, err)
	}
	return string(b)
}

// Tail returns the last n bytes of the log, for failure reports.
func (p *Process) Tail(n int) string {
	s := p.Log()
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// reportTail is how much of the log an error of the harness carries.
const reportTail = 8 << 10

// WaitHTTP polls url until it answers 200, like the package's WaitHTTP, and fails early, with the
// tail of the log, when the process exits first.
func (p *Process) WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	return p.waitFor(ctx, timeout, url, func(ctx context.Context) error { return getOK(ctx, url) })
}

// waitFor polls check until it succeeds, the process exits or timeout passes; errors name what
// was awaited and carry the tail of the log.
func (p *Process) waitFor(ctx context.Context, timeout time.Duration, what string, check func(context.Context) error) error {
	exited := p.Exited()
	err := poll(ctx, timeout, exited, check)
	if err == nil {
		return nil
	}
	select {
	case <-exited:
		exitErr := p.Err()
		if exitErr == nil {
			exitErr = errors.New("exit status 0")
		}
		return fmt.Errorf("%s exited (%w) before %s answered; log:\n%s", p.cmd.Name, exitErr, what, p.Tail(reportTail))
	default:
	}
	return fmt.Errorf("%s: %s not ready within %s: %w; log:\n%s", p.cmd.Name, what, timeout, err, p.Tail(reportTail))
}
