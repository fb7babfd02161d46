package multireplica

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	leaseName   = "latchkey.oauth.latchkey.dev"
	faultLoad   = 8 * time.Second // how long the mixed load runs
	faultKillAt = 3 * time.Second // when the leader is killed, into the load
	faultUsers  = 8               // concurrent clients
	faultPause  = 5 * time.Millisecond
)

// outcome is one request of the load.
type outcome struct {
	op       string
	replica  int
	start    time.Time
	end      time.Time
	status   int // 0 on a transport error
	err      error
	errorTag string // the OAuth error code of a 4xx
}

// leaderIndex returns the index of the replica whose metrics report it holds the leader Lease,
// or -1 when none (or more than one) does.
func (s *suite) leaderIndex(ctx context.Context, skip int) int {
	leader := -1
	for i, r := range s.replicas {
		if i == skip {
			continue
		}
		if isLeader(ctx, r) {
			if leader >= 0 {
				return -1
			}
			leader = i
		}
	}
	return leader
}

// isLeader reads controller-runtime's leader_election_master_status gauge of the replica.
func isLeader(ctx context.Context, r *replica) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.metrics+"/metrics", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close() //nolint:errcheck // test
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "leader_election_master_status{") && strings.Contains(line, `name="`+leaseName+`"`) {
			return strings.HasSuffix(strings.TrimSpace(line), " 1")
		}
	}
	return false
}

// leaseHolder returns the holderIdentity of the leader Lease.
func (s *suite) leaseHolder() (string, error) {
	out, err := s.cp.Kubectl(nil, "get", "lease", leaseName, "-n", namespace, "-o", "jsonpath={.spec.holderIdentity}")
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return strings.TrimSpace(out), nil
}

// keyIDs returns the kids of the signing key Secret's keys.json.
func (s *suite) keyIDs(t *testing.T) []string {
	t.Helper()
	out, err := s.cp.Kubectl(nil, "get", "secret", keySecret, "-n", namespace, "-o", `jsonpath={.data.keys\.json}`)
	require.NoError(t, err, out)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	require.NoError(t, err)
	var set struct {
		Keys []struct {
			ID string `json:"kid"`
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(raw, &set))
	ids := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	require.NotEmpty(t, ids)
	return ids
}

// family is one refresh token chain, owned by one client goroutine.
type family struct {
	latest    string
	rotations int
	abandoned bool // a rotation was in flight at the killed replica: its successor is unknown
}

func TestKillingTheLeaderUnderLoadLosesNoRefreshTokenAndLeadershipMoves(t *testing.T) {
	s := env
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()

	var leader int
	require.Eventually(t, func() bool { leader = s.leaderIndex(ctx, -1); return leader >= 0 },
		leaseDuration+5*retryPeriod, 100*time.Millisecond, "exactly one replica leads")
	holderBefore, err := s.leaseHolder()
	require.NoError(t, err)
	require.NotEmpty(t, holderBefore)
	kidsBefore := s.keyIDs(t)
	victim := s.replicas[leader]
	t.Logf("leader before the kill: %s (%s), signing keys %v", victim.name, holderBefore, kidsBefore)

	var (
		mu       sync.Mutex
		outcomes []outcome
		families []*family
		killedAt atomic.Int64 // unix nanoseconds; 0 before the kill
	)
	record := func(o outcome) {
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}
	// pick returns the next replica round-robin, leaving the killed one out once it is dead, as
	// a load balancer would.
	pick := func(n *int) int {
		for {
			i := *n % len(s.replicas)
			*n++
			if i != leader || killedAt.Load() == 0 {
				return i
			}
		}
	}
	call := func(op string, i int, auth clientAuth, path string, form url.Values) (apiResponse, outcome) {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		o := outcome{op: op, replica: i, start: time.Now()}
		res, err := s.replicas[i].postForm(rctx, path, auth, form)
		o.end, o.status, o.err, o.errorTag = time.Now(), res.status, err, res.str("error")
		if err != nil {
			o.status = 0
		}
		record(o)
		return res, o
	}
	// lostAtKill tells whether a failed request went to the killed replica and ended after the
	// kill: it was in flight then (new requests leave the killed replica out).
	lostAtKill := func(o outcome) bool {
		k := killedAt.Load()
		return o.replica == leader && k != 0 && o.end.UnixNano() >= k && (o.status == 0 || o.status >= 500)
	}

	loadCtx, stopLoad := context.WithTimeout(ctx, faultLoad)
	defer stopLoad()
	var wg sync.WaitGroup
	for w := range faultUsers {
		wg.Go(func() {
			n := w
			var fam *family
			for step := 0; loadCtx.Err() == nil; step++ {
				time.Sleep(faultPause)
				i := pick(&n)
				switch {
				case step%4 == 0:
					call("client_credentials", i, service, "/oauth2/token",
						url.Values{"grant_type": {"client_credentials"}, "scope": {"read:projects"}})
				case step%4 != 3 && step%12 != 1 && fam != nil && !fam.abandoned:
					res, o := call("refresh", i, webapp, "/oauth2/token",
						url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fam.latest}})
					switch {
					case o.status == http.StatusOK && res.str("refresh_token") != "":
						mu.Lock()
						fam.latest = res.str("refresh_token")
						fam.rotations++
						mu.Unlock()
					case lostAtKill(o):
						// The rotation may have happened without its answer: a client would sign in again.
						mu.Lock()
						fam.abandoned = true
						mu.Unlock()
					}
				case step%4 != 3:
					res, o := call("password", i, webapp, "/oauth2/token", url.Values{
						"grant_type": {"password"}, "username": {alice}, "password": {alicePassword}, "scope": {"openid profile email"},
					})
					if o.status == http.StatusOK && res.str("refresh_token") != "" {
						f := &family{latest: res.str("refresh_token")}
						mu.Lock()
						families = append(families, f)
						mu.Unlock()
						fam = f
					}
				default:
					if fam == nil {
						continue
					}
					mu.Lock()
					tok := fam.latest
					mu.Unlock()
					call("introspect", i, service, "/oauth2/introspect", url.Values{"token": {tok}})
				}
			}
		})
	}

	// Kill the leader into the load, then watch for another replica to take the Lease over.
	select {
	case <-time.After(faultKillAt):
	case <-ctx.Done():
		t.Fatal("timed out before the kill")
	}
	killTime := time.Now()
	killedAt.Store(killTime.UnixNano())
	require.NoError(t, victim.srv.Kill())
	t.Logf("SIGKILLed %s at %s into the load", victim.name, faultKillAt)

	var newLeader int
	var moved time.Duration
	for {
		if newLeader = s.leaderIndex(ctx, leader); newLeader >= 0 {
			moved = time.Since(killTime)
			break
		}
		if time.Since(killTime) > leaseDuration+5*retryPeriod || ctx.Err() != nil {
			t.Fatalf("no replica took the leader Lease over within %s of the kill", time.Since(killTime))
		}
		time.Sleep(50 * time.Millisecond)
	}
	holderAfter, err := s.leaseHolder()
	require.NoError(t, err)
	t.Logf("leadership moved to %s (%s) %s after the kill", s.replicas[newLeader].name, holderAfter, moved.Round(10*time.Millisecond))
	assert.NotEqual(t, holderBefore, holderAfter, "the Lease holder changed")
	// A candidate takes an unreleased Lease over at its first try once LeaseDuration has passed
	// since it observed the last renewal. Its tries are RetryPeriod to 2.2×RetryPeriod apart
	// (client-go's JitterFactor 1.2), so it may observe the last renewal up to one try late
	// and take over up to one try late: at most LeaseDuration + 2 jittered tries after the kill.
	maxTry := retryPeriod * 11 / 5
	assert.LessOrEqual(t, moved, leaseDuration+2*maxTry,
		"leadership moves within the lease duration and the candidates' (jittered) retry periods")

	wg.Wait()

	// Restart the killed replica with the same flags and ports; it rejoins as a follower.
	require.NoError(t, victim.srv.Restart())
	require.NoError(t, victim.waitReady(30*time.Second))
	require.NoError(t, victim.waitServes(15*time.Second))
	assert.Equal(t, newLeader, s.leaderIndex(ctx, -1), "the restarted replica does not take leadership back")

	// Count every request.
	type key struct{ op, result string }
	counts := map[key]int{}
	var lost, serverErrors, otherFailures []string
	for _, o := range outcomes {
		result := fmt.Sprint(o.status)
		switch {
		case o.err != nil:
			result = "transport error"
		case o.status >= 400 && o.errorTag != "":
			result += " " + o.errorTag
		}
		counts[key{o.op, result}]++
		desc := fmt.Sprintf("%s at %s +%s: %s %v", o.op, s.replicas[o.replica].name, o.start.Sub(killTime).Round(time.Millisecond), result, o.err)
		switch {
		case lostAtKill(o):
			lost = append(lost, desc)
		case o.err != nil:
			otherFailures = append(otherFailures, desc)
		case o.status >= 500:
			serverErrors = append(serverErrors, desc)
		case o.status != http.StatusOK:
			otherFailures = append(otherFailures, desc)
		}
	}
	var keys []key
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.op+a.result, b.op+b.result) })
	for _, k := range keys {
		t.Logf("%-18s %-28s %d", k.op, k.result, counts[k])
	}
	t.Logf("%d requests; %d in flight at the killed %s (lost with it)", len(outcomes), len(lost), victim.name)
	assert.Greater(t, len(outcomes), 100, "the load ran")
	assert.LessOrEqual(t, len(lost), faultUsers, "only the requests in flight at the kill fail")
	assert.Empty(t, serverErrors, "no 5xx beyond the in-flight requests of the killed process")
	assert.Empty(t, otherFailures, "every other request succeeds")
	for _, d := range lost {
		t.Logf("lost with the killed process: %s", d)
	}

	// Every refresh token handed out (the latest of each chain) is redeemable exactly once.
	var live []*family
	rotations := 0
	for _, f := range families {
		rotations += f.rotations
		if !f.abandoned {
			live = append(live, f)
		}
	}
	t.Logf("%d refresh token families, %d rotations, %d abandoned with an in-flight rotation", len(families), rotations, len(families)-len(live))
	require.NotEmpty(t, live)
	assert.Positive(t, rotations, "refresh tokens rotated under load")
	for n, f := range live {
		r := s.replicas[n%len(s.replicas)]
		res := r.refresh(t, f.latest)
		assert.Equal(t, http.StatusOK, res.status, "the latest refresh token of family %d redeems at %s: %s", n, r.name, res)
	}
	time.Sleep(refreshGrace + 300*time.Millisecond) // past the reuse grace window
	for n, f := range live {
		r := s.replicas[(n+1)%len(s.replicas)]
		res := r.refresh(t, f.latest)
		assert.Equal(t, http.StatusBadRequest, res.status, "family %d: %s", n, res)
		assert.Equal(t, "invalid_grant", res.str("error"), "the latest refresh token of family %d redeems only once: %s", n, res)
	}

	// No replica wrote another signing key set.
	assert.Equal(t, kidsBefore, s.keyIDs(t), "the signing key set is unchanged")
	for _, r := range s.replicas {
		k := kids(r.jwks(t))
		slices.Sort(k)
		assert.Equal(t, kidsBefore, k, "%s publishes the key set", r.name)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the fault test ran out of time")
	}
}
