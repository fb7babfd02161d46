package controlplane

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Runnable is what Main runs beside the tests until they end: a controller-runtime manager.
type Runnable interface {
	Start(ctx context.Context) error
}

// Main is the TestMain of a package whose tests share one control plane and the managers setup
// builds on it:
//
//	func TestMain(m *testing.M) { os.Exit(controlplane.Main(m, opts, setup)) }
//
// It sets controller-runtime's logger (Logger), starts the control plane with opts, calls setup,
// starts what setup returned, runs the tests, then stops the managers (and waits for them) and
// the control plane. It returns the exit code; what fails to start is reported on stderr and
// exits 1.
func Main(m *testing.M, opts Options, setup func(cp *ControlPlane) ([]Runnable, error)) (code int) {
	log.SetLogger(Logger())
	cp, err := Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	runnables, err := setup(cp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "set up the tests:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, r := range runnables {
		wg.Go(func() {
			if err := r.Start(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "manager:", err)
			}
		})
	}
	code = m.Run()
	cancel()
	wg.Wait()
	return code
}
