package main

import (
	"context"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-logr/logr"
)

// startPprof serves Go's runtime profiles (net/http/pprof) on addr from the start of serve, in
// both modes, so a profile can cover the manifest load or the operator's start-up. Off unless
// --pprof-bind-address is set: profiles reveal the process's internals, so it is meant for a
// loopback address or a port-forward. An error after the listener is up is logged.
func startPprof(ctx context.Context, addr string, log logr.Logger) error {
	if addr == "" || addr == "0" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or trace answers after its ?seconds= (pprof refuses a
	// duration beyond the server's WriteTimeout).
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && ctx.Err() == nil {
			log.Error(err, "pprof server stopped")
		}
	}()
	return nil
}
