// Package harness is the one test harness of Latchkey: the real parts tests run against and the
// ways to drive them, shared by every test package and by the developer tools under hack/.
//
// It owns:
//   - where the repository is (Root) and the one policy for a missing tool (Provide, Tool): find
//     it, else install it with the repository's hack/ script, else fail saying what to run. A
//     test never skips because a tool is missing;
//   - the latchkey binary built for a test binary (BuildBinary) and `latchkey serve` processes on
//     loopback ports (StartServer, ServeAddrs), retried when a port picked by FreePort was taken
//     before the process bound it;
//   - processes with a log file, graceful stop, kill, restart and the log's tail for failure
//     reports (Start, Process), and readiness waits that poll a condition (WaitHTTP);
//   - Debian's redis-server on a loopback port without persistence (StartRedis, NewRedis) and
//     a go-redis hook that counts round trips (RoundTrips), and a TCP proxy that loses the
//     reply of a command the server ran (CutProxy);
//   - one fake clock (Clock);
//   - an HTTP "browser" with a cookie jar that drives the login and consent pages (Browser, Page,
//     Callback).
//
// The control plane (envtest) lives in the subpackage controlplane, so that tests which only need
// the pieces above do not link client-go or controller-runtime. This package imports the standard
// library, testify and go-redis only, and nothing of Latchkey: server/ code never imports it
// (server/store/storetest, test-support code, uses its Clock).
//
// Nothing here is a global: what lives as long as a test binary (the built binary, a Redis, a
// control plane) is held by the test package's TestMain.
package harness
