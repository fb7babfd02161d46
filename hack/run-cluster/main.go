// Command run-cluster starts a local Kubernetes control plane for development: etcd and
// kube-apiserver from KUBEBUILDER_ASSETS (default bin/k8s, built by hack/envtest-binaries.sh
// when missing), started by the test harness's control plane (internal/harness/controlplane). It
// installs the CRDs from -crds, writes a kubeconfig for a cluster-admin user to -kubeconfig and
// runs until interrupted, then stops the control plane and removes the kubeconfig.
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
	"syscall"

	"github.com/latchkey-dev/latchkey/internal/harness/controlplane"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cp, err := controlplane.Start(controlplane.Options{Kubeconfig: kubeconfigPath, CRDs: crdDir, User: "latchkey-developer"})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cp.Stop()) }()
	fmt.Printf("run-cluster: control plane at %s; CRDs from %s installed\n", cp.Host(), crdDir)
	fmt.Printf("run-cluster: export KUBECONFIG=%s\n", kubeconfigPath)

	<-ctx.Done()
	fmt.Println("run-cluster: stopping the control plane")
	return nil
}
