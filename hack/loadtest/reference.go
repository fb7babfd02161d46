package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey-dev/latchkey/internal/harness"
)

// The reference row: a bare net/http handler that parses the form, checks a SHA-256-hashed
// client secret in constant time and signs an ES256 JWT with go-jose's JWT builder, with the
// claims and header Latchkey writes for the same client (iss, sub, aud, exp, iat, jti,
// client_id; alg, kid of the same length, typ at+jwt). It is what PERFORMANCE.md calls the bare handler: Latchkey's
// client_credentials ES256 is measured against it in the same run (-reference).

// referenceFlag runs this binary as the reference server (on the address given) instead of a
// load run; the load run starts it that way, pinned to the server's core.
const referenceFlag = "serve-reference"

// referenceClaims are the claims of the reference token: jwt.Claims plus client_id.
type referenceClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
}

// referenceResponse is the token response, as Latchkey writes it for client_credentials.
type referenceResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// serveReference serves the reference handler on addr for clientID/secret until the process is
// interrupted. A static one signs one token at start and answers every request with it (the
// floor: the tail rows' generator, kernel and net/http cost without any signing), and serves
// its stall probe at stallsPath.
func serveReference(addr, issuer, clientID, secret string, static bool) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	// A key ID of the shape Latchkey's have (algorithm, dash, 24 hex digits), so that the
	// headers are as long as each other.
	var kid [12]byte
	_, _ = rand.Read(kid[:])
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", fmt.Sprintf("ES256-%x", kid)))
	if err != nil {
		return err
	}
	sign := func(id string) (string, error) {
		var jti [16]byte
		_, _ = rand.Read(jti[:])
		now := time.Now()
		claims := referenceClaims{Claims: jwt.Claims{
			Issuer: issuer, Subject: id, Audience: jwt.Audience{id},
			Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now),
			ID: base64.RawURLEncoding.EncodeToString(jti[:]),
		}, ClientID: id}
		return jwt.Signed(signer).Claims(claims).Serialize()
	}
	var fixed string
	if static {
		if fixed, err = sign(clientID); err != nil {
			return err
		}
	}
	wantHash := sha256.Sum256([]byte(secret))
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		id, pw, ok := r.BasicAuth()
		got := sha256.Sum256([]byte(pw))
		if !ok || id != clientID || subtle.ConstantTimeCompare(got[:], wantHash[:]) != 1 {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		tok := fixed
		if tok == "" {
			var err error
			if tok, err = sign(id); err != nil {
				http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(referenceResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: 3600})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/token", h)
	if static {
		// The floor server sits idle on core 0 while Latchkey is measured: its probe says
		// whether core 0 stalled meanwhile.
		probe := &stallProbe{}
		go probe.run(context.Background())
		mux.Handle(stallsPath, probe)
	}
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// The load run stops this server with an interrupt. Handled here, not left to the runtime's
	// default: a process started with SIGINT ignored (as a shell starts a background job)
	// would otherwise never exit, and the load run would wait for it forever.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startReference starts this binary as the reference server on core 0 (GOMAXPROCS=1), for the
// client clientID/secret, and returns it once its token endpoint issues a token; static: the
// floor server (serveReference).
func startReference(ctx context.Context, issuer, clientID, secret string, static bool) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	ready := func() bool {
		status, _, err := post(ctx, http.DefaultClient, base+"/oauth2/token", basic(clientID, secret), "grant_type=client_credentials")
		return err == nil && status == http.StatusOK
	}
	return startOnCore0(ctx, base, ready, 30*time.Second, self, "-"+referenceFlag, addr,
		"-reference-issuer", issuer, "-reference-client", clientID+":"+secret, fmt.Sprintf("-reference-static=%t", static))
}

// runReferenceServer is main for -serve-reference.
func runReferenceServer(addr, issuer, client string, static bool) error {
	id, secret, ok := strings.Cut(client, ":")
	if !ok {
		return errors.New("-reference-client must be id:secret")
	}
	return serveReference(addr, issuer, id, secret, static)
}
