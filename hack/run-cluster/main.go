// Command run-cluster starts a local Kubernetes control plane for development: etcd and
// kube-apiserver from KUBEBUILDER_ASSETS (bin/k8s, built by hack/envtest-binaries.sh), started
// through controller-runtime's envtest. It installs the CRDs from -crds, writes a kubeconfig for
// a cluster-admin user to -kubeconfig and runs until interrupted, then stops the control plane.
//
// `make run-cluster` runs it through hack/run-cluster.sh, which then starts the operator.
// It is a developer tool: nothing in the server or the controllers imports it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func main() {
	// An own FlagSet: controller-runtime registers -kubeconfig on the global one.
	flags := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	kubeconfig := flags.String("kubeconfig", "bin/run-cluster/kubeconfig", "where to write the admin kubeconfig")
	crds := flags.String("crds", "config/crd/bases", "directory of CRDs to install")
	_ = flags.Parse(os.Args[1:]) // ExitOnError: Parse exits on a bad flag

	if err := run(*kubeconfig, *crds); err != nil {
		fmt.Fprintln(os.Stderr, "run-cluster:", err)
		os.Exit(1)
	}
}

func run(kubeconfigPath, crdDir string) (err error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set (run hack/envtest-binaries.sh and point it at bin/k8s)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{crdDir},
		ErrorIfCRDPathMissing: true,
	}
	if _, err := env.Start(); err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	defer func() {
		if stopErr := env.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop control plane: %w", stopErr))
		}
		_ = os.Remove(kubeconfigPath)
	}()

	admin, err := env.AddUser(envtest.User{Name: "latchkey-developer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(kubeconfigPath), 0o750); err != nil {
		return err
	}
	// Written to a temporary name and renamed, so a watcher never reads half a file.
	tmp := kubeconfigPath + ".tmp"
	if err := os.WriteFile(tmp, kubeconfig, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, kubeconfigPath); err != nil {
		return err
	}
	fmt.Printf("run-cluster: control plane at %s; CRDs from %s installed\n", env.Config.Host, crdDir)
	fmt.Printf("run-cluster: export KUBECONFIG=%s\n", kubeconfigPath)

	<-ctx.Done()
	fmt.Println("run-cluster: stopping the control plane")
	return nil
}
