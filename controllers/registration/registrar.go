package registration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/convert"
	"github.com/latchkey-dev/latchkey/controllers/policy"
	"github.com/latchkey-dev/latchkey/server/oauth2"
	"github.com/latchkey-dev/latchkey/server/oauth2/register"
	"github.com/latchkey-dev/latchkey/server/registration"
)

// Labels and annotations of registered OAuthClients.
const (
	// LabelRegistered marks an OAuthClient created by dynamic registration ("true").
	LabelRegistered = v1alpha1.LabelRegistered
	// AnnotationTokenHash holds the hex SHA-256 of the client's registration access token.
	AnnotationTokenHash = "oauth.latchkey.dev/registration-access-token-sha256"
	// LabelRegistrant says how the client was registered: "anonymous" or "initial-token"
	// (register.Registrant). The bounds count each kind on its own.
	LabelRegistrant = "oauth.latchkey.dev/registrant"

	labelManagedBy = "app.kubernetes.io/managed-by"
	labelClient    = "oauth.latchkey.dev/client"
	managedBy      = "latchkey"
)

// createAttempts bounds the retries of a client ID that is taken.
const createAttempts = 3

// RBAC of the registrar, besides what controllers.Setup needs.
//
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=oauthclients,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;delete
// +kubebuilder:rbac:groups=oauth.latchkey.dev,resources=oauthclientpolicies,verbs=get;list

// Registrar registers clients as OAuthClient resources in one namespace.
type Registrar struct {
	client    client.Client
	reader    client.Reader
	namespace string
	tokenURL  string
	max       int // anonymous registrations
	maxToken  int // registrations with an initial access token
	// defaultPolicy is the OAuthClientPolicy that applies to every namespace; zero: none.
	defaultPolicy types.NamespacedName
}

var _ register.ClientRegistrar = (*Registrar)(nil)

// Option configures a Registrar.
type Option func(*Registrar)

// WithReader reads OAuthClients and Secrets through r, e.g. the manager's API reader; the
// default is the client. It must not be a cache: a client is read right after its creation.
func WithReader(r client.Reader) Option { return func(g *Registrar) { g.reader = r } }

// WithTokenURL writes the token endpoint URL into client Secrets under token-url, as the
// controller does for the Secrets it generates.
func WithTokenURL(u string) Option { return func(g *Registrar) { g.tokenURL = u } }

// WithMaxClients bounds how many anonymously registered OAuthClients (open registration) the
// namespace may hold; zero (the default) means no bound. Registered OAuthClients without the
// registrant label (created before it existed) count as anonymous.
func WithMaxClients(n int) Option { return func(g *Registrar) { g.max = n } }

// WithMaxInitialTokenClients bounds, separately, how many OAuthClients registered with an
// initial access token the namespace may hold; zero (the default) means no bound.
func WithMaxInitialTokenClients(n int) Option { return func(g *Registrar) { g.maxToken = n } }

// WithDefaultPolicy names the OAuthClientPolicy that applies to every namespace, besides those
// of the registrar's namespace (controllers.Options.DefaultClientPolicy); an empty name: none.
func WithDefaultPolicy(p types.NamespacedName) Option {
	return func(g *Registrar) { g.defaultPolicy = p }
}

// New returns a registrar creating OAuthClients in namespace with c, whose scheme must know
// api/v1alpha1 and core/v1.
func New(c client.Client, namespace string, opts ...Option) (*Registrar, error) {
	if c == nil {
		return nil, errors.New("registration: a client is required")
	}
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return nil, fmt.Errorf("registration: namespace %q: %v", namespace, msgs)
	}
	r := &Registrar{client: c, reader: c, namespace: namespace}
	for _, o := range opts {
		o(r)
	}
	if r.max < 0 || r.maxToken < 0 {
		return nil, errors.New("registration: MaxClients and MaxInitialTokenClients must not be negative")
	}
	return r, nil
}

// Namespace is where registered clients are created.
func (r *Registrar) Namespace() string { return r.namespace }

// Register creates the OAuthClient and, for a confidential client, its Secret.
func (r *Registrar) Register(ctx context.Context, m register.ClientMetadata, by register.Registrant) (register.RegisteredClient, error) {
	if err := r.checkLimit(ctx, by); err != nil {
		return register.RegisteredClient{}, err
	}
	token := registration.NewSecret()
	tokenHash := sha256.Sum256([]byte(token))
	var oc *v1alpha1.OAuthClient
	for attempt := 1; ; attempt++ {
		id := registration.NewClientID()
		oc = &v1alpha1.OAuthClient{
			ObjectMeta: metav1.ObjectMeta{
				Namespace:   r.namespace,
				Name:        id,
				Labels:      map[string]string{LabelRegistered: "true", LabelRegistrant: string(by), labelManagedBy: managedBy},
				Annotations: map[string]string{AnnotationTokenHash: hex.EncodeToString(tokenHash[:])},
			},
		}
		applyMetadata(oc, &m)
		if err := r.checkPolicies(ctx, oc); err != nil {
			return register.RegisteredClient{}, err
		}
		err := r.client.Create(ctx, oc)
		if err == nil {
			break
		}
		if !apierrors.IsAlreadyExists(err) || attempt == createAttempts {
			return register.RegisteredClient{}, apiError(err, "create OAuthClient "+r.namespace+"/"+id)
		}
	}
	rc := registered(oc)
	rc.RegistrationAccessToken = token
	if !m.Public() {
		rc.ClientSecret = registration.NewSecret()
		if err := r.createSecret(ctx, oc, rc.ClientSecret); err != nil {
			if derr := r.client.Delete(ctx, oc); client.IgnoreNotFound(derr) != nil {
				log.FromContext(ctx).Error(derr, "could not delete the OAuthClient whose Secret failed", "oauthclient", oc.Name)
			}
			return register.RegisteredClient{}, err
		}
	}
	log.FromContext(ctx).Info("registered client created", "oauthclient", client.ObjectKeyFromObject(oc), "clientID", oc.Name)
	return rc, nil
}

// checkLimit returns ErrRegistrationLimit when the namespace holds as many registered clients
// of the registrant's kind as its bound allows.
func (r *Registrar) checkLimit(ctx context.Context, by register.Registrant) error {
	limit, op := r.max, selection.NotEquals // anonymous: every registered client not made with a token
	if by != register.RegistrantAnonymous {
		limit, op = r.maxToken, selection.Equals
	}
	if limit == 0 {
		return nil
	}
	kind, err := labels.NewRequirement(LabelRegistrant, op, []string{string(register.RegistrantInitialToken)})
	if err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	registered, err := labels.NewRequirement(LabelRegistered, selection.Equals, []string{"true"})
	if err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("OAuthClientList"))
	if err := r.reader.List(ctx, &list, client.InNamespace(r.namespace),
		client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*registered, *kind)}); err != nil {
		return apiFailure(err, "list registered OAuthClients")
	}
	if len(list.Items) >= limit {
		return fmt.Errorf("registration: %d clients registered by %s in %s: %w", len(list.Items), by, r.namespace, register.ErrRegistrationLimit)
	}
	return nil
}

// checkPolicies refuses, as invalid_client_metadata, a client that would break an
// OAuthClientPolicy of the namespace (or the default policy): the chart's admission policy
// would refuse it too, and the server would not serve it. The description names the policy,
// the rule and the value.
func (r *Registrar) checkPolicies(ctx context.Context, oc *v1alpha1.OAuthClient) error {
	var list v1alpha1.OAuthClientPolicyList
	if err := r.reader.List(ctx, &list, client.InNamespace(r.namespace)); err != nil {
		return apiFailure(err, "list OAuthClientPolicies")
	}
	ps := list.Items
	if r.defaultPolicy.Name != "" && r.defaultPolicy.Namespace != r.namespace {
		var def v1alpha1.OAuthClientPolicy
		if err := r.reader.Get(ctx, r.defaultPolicy, &def); err == nil {
			ps = append(ps, def)
		} else if !apierrors.IsNotFound(err) {
			return apiFailure(err, "get OAuthClientPolicy "+r.defaultPolicy.String())
		}
	}
	if vs := policy.Evaluate(oc, ps); len(vs) > 0 {
		return register.ErrInvalidClientMetadata.WithDescription(fmt.Sprintf("The client metadata breaks a policy: %.300s", policy.Message(vs)))
	}
	return nil
}

// createSecret creates the confidential client's Secret, owned by the OAuthClient.
func (r *Registrar) createSecret(ctx context.Context, oc *v1alpha1.OAuthClient, secret string) error {
	name, key := convert.SecretRef(oc)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: oc.Namespace,
			Name:      name,
			Labels:    map[string]string{labelManagedBy: managedBy, labelClient: oc.Name, LabelRegistered: "true"},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			convert.GeneratedClientIDKey: []byte(convert.ClientID(oc)),
			key:                          []byte(secret),
		},
	}
	if r.tokenURL != "" {
		s.Data[convert.GeneratedTokenURLKey] = []byte(r.tokenURL)
	}
	if err := controllerutil.SetControllerReference(oc, s, r.client.Scheme()); err != nil {
		return fmt.Errorf("registration: own Secret %s: %w", name, err)
	}
	if err := r.client.Create(ctx, s); err != nil {
		return apiFailure(err, "create Secret "+s.Namespace+"/"+name)
	}
	return nil
}

// Get returns the registered client.
func (r *Registrar) Get(ctx context.Context, clientID string) (register.RegisteredClient, error) {
	oc, err := r.get(ctx, clientID)
	if err != nil {
		return register.RegisteredClient{}, err
	}
	return registered(oc), nil
}

// get reads the registered OAuthClient of the client ID; anything else is ErrClientNotFound.
func (r *Registrar) get(ctx context.Context, clientID string) (*v1alpha1.OAuthClient, error) {
	if len(validation.IsDNS1123Subdomain(clientID)) > 0 {
		return nil, register.ErrClientNotFound
	}
	var oc v1alpha1.OAuthClient
	if err := r.reader.Get(ctx, types.NamespacedName{Namespace: r.namespace, Name: clientID}, &oc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, register.ErrClientNotFound
		}
		return nil, apiFailure(err, "get OAuthClient "+r.namespace+"/"+clientID)
	}
	if oc.Labels[LabelRegistered] != "true" || oc.Spec.ClientID != clientID || !oc.DeletionTimestamp.IsZero() {
		return nil, register.ErrClientNotFound
	}
	return &oc, nil
}

// Update changes the registration-controlled fields of the spec.
func (r *Registrar) Update(ctx context.Context, clientID string, m register.ClientMetadata) (register.RegisteredClient, error) {
	var oc *v1alpha1.OAuthClient
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		if oc, err = r.get(ctx, clientID); err != nil {
			return err
		}
		if (convert.ClientType(oc) == v1alpha1.ClientTypePublic) != m.Public() {
			return register.ErrInvalidClientMetadata.WithDescription(
				"The token_endpoint_auth_method cannot change between none and a method with a secret.")
		}
		applyMetadata(oc, &m)
		if err := r.checkPolicies(ctx, oc); err != nil {
			return err
		}
		return r.client.Update(ctx, oc)
	})
	if err != nil {
		return register.RegisteredClient{}, apiError(err, "update OAuthClient "+r.namespace+"/"+clientID)
	}
	log.FromContext(ctx).Info("registered client updated", "oauthclient", client.ObjectKeyFromObject(oc))
	return registered(oc), nil
}

// Delete deletes the OAuthClient and the Secret it controls.
func (r *Registrar) Delete(ctx context.Context, clientID string) error {
	oc, err := r.get(ctx, clientID)
	if err != nil {
		return err
	}
	if err := r.client.Delete(ctx, oc, client.Preconditions{UID: &oc.UID},
		client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return register.ErrClientNotFound
		}
		return apiFailure(err, "delete OAuthClient "+oc.Namespace+"/"+oc.Name)
	}
	log.FromContext(ctx).Info("registered client deleted", "oauthclient", client.ObjectKeyFromObject(oc))
	if convert.ClientType(oc) != v1alpha1.ClientTypeConfidential {
		return nil
	}
	name, _ := convert.SecretRef(oc)
	var s corev1.Secret
	if err := r.reader.Get(ctx, types.NamespacedName{Namespace: oc.Namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		log.FromContext(ctx).Error(err, "reading the deleted client's Secret; the garbage collector will delete it", "secret", name)
		return nil
	}
	if !metav1.IsControlledBy(&s, oc) {
		return nil
	}
	if err := r.client.Delete(ctx, &s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
		log.FromContext(ctx).Error(err, "deleting the deleted client's Secret; the garbage collector will delete it", "secret", name)
	}
	return nil
}

// CheckRegistrationToken compares the token's hash with the annotation in constant time.
func (r *Registrar) CheckRegistrationToken(ctx context.Context, clientID, token string) error {
	oc, err := r.get(ctx, clientID)
	if err != nil {
		return err
	}
	want, err := hex.DecodeString(oc.Annotations[AnnotationTokenHash])
	if err != nil || len(want) != sha256.Size {
		return register.ErrRegistrationTokenMismatch
	}
	if !registration.TokenMatches([sha256.Size]byte(want), token) {
		return register.ErrRegistrationTokenMismatch
	}
	return nil
}

// applyMetadata sets the spec fields registration controls and leaves the others.
func applyMetadata(oc *v1alpha1.OAuthClient, m *register.ClientMetadata) {
	s := &oc.Spec
	s.ClientID = oc.Name
	s.GrantTypes = nil
	for _, g := range m.GrantTypes {
		s.GrantTypes = append(s.GrantTypes, v1alpha1.GrantType(g))
	}
	s.RedirectURIs = slices.Clone(m.RedirectURIs)
	s.PostLogoutRedirectURIs = slices.Clone(m.PostLogoutRedirectURIs)
	s.Scopes = slices.Clone(m.Scopes)
	s.DefaultScopes = slices.DeleteFunc(s.DefaultScopes, func(sc string) bool { return !slices.Contains(s.Scopes, sc) })
	if len(s.DefaultScopes) == 0 {
		s.DefaultScopes = nil
	}
	s.DisplayName = m.ClientName
	s.BackchannelLogoutURI = m.BackchannelLogoutURI
	s.BackchannelLogoutSessionRequired = m.BackchannelLogoutSessionRequired
	s.RequirePushedAuthorizationRequests = m.RequirePushedAuthorizationRequests
	s.TokenEndpointAuthMethod = v1alpha1.TokenEndpointAuthMethod(m.TokenEndpointAuthMethod)
	if m.Public() {
		s.Type = v1alpha1.ClientTypePublic
		s.SecretPolicy, s.SecretRef = "", nil
		return
	}
	s.Type = v1alpha1.ClientTypeConfidential
	if s.SecretRef == nil {
		s.SecretPolicy = v1alpha1.SecretPolicyExternal
		s.SecretRef = &v1alpha1.LocalSecretKeyRef{Name: oc.Name + convert.ClientSecretSuffix, Key: convert.ClientSecretKey}
	}
}

// registered returns what the registrar tells of an OAuthClient (no credentials).
func registered(oc *v1alpha1.OAuthClient) register.RegisteredClient {
	m := register.ClientMetadata{
		RedirectURIs:            slices.Clone(oc.Spec.RedirectURIs),
		PostLogoutRedirectURIs:  slices.Clone(oc.Spec.PostLogoutRedirectURIs),
		TokenEndpointAuthMethod: string(oc.Spec.TokenEndpointAuthMethod),
		ClientName:              oc.Spec.DisplayName,
		Scopes:                  slices.Clone(oc.Spec.Scopes),

		BackchannelLogoutURI:               oc.Spec.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired:   oc.Spec.BackchannelLogoutSessionRequired,
		RequirePushedAuthorizationRequests: oc.Spec.RequirePushedAuthorizationRequests,
	}
	for _, g := range oc.Spec.GrantTypes {
		m.GrantTypes = append(m.GrantTypes, string(g))
	}
	switch {
	case convert.ClientType(oc) == v1alpha1.ClientTypePublic:
		m.TokenEndpointAuthMethod = oauth2.AuthMethodNone
	case m.TokenEndpointAuthMethod == "":
		m.TokenEndpointAuthMethod = oauth2.AuthMethodBasic
	}
	return register.RegisteredClient{ClientID: convert.ClientID(oc), IssuedAt: oc.CreationTimestamp.Time, Metadata: m}
}

// apiError maps an API error: a validation refusal is invalid_client_metadata, the registrar's
// own sentinels and *oauth2.Error pass, anything else is wrapped by apiFailure.
func apiError(err error, action string) error {
	var oe *oauth2.Error
	switch {
	case errors.As(err, &oe), errors.Is(err, register.ErrClientNotFound):
		return err
	case apierrors.IsInvalid(err):
		desc := "The client metadata was refused."
		var se *apierrors.StatusError
		if errors.As(err, &se) && se.ErrStatus.Details != nil && len(se.ErrStatus.Details.Causes) > 0 {
			c := se.ErrStatus.Details.Causes[0]
			desc = fmt.Sprintf("The client metadata was refused: %.200s", c.Message)
		}
		return register.ErrInvalidClientMetadata.WithDescription(desc).WithCause(err)
	}
	return apiFailure(err, action)
}

// apiFailure wraps the error of an API call that failed. When the API server cannot answer now
// (it throttles (429), is unavailable (503), timed out, or refused the connection) the error
// also wraps register.ErrRegistrarUnavailable, which the handler answers temporarily_unavailable
// (503): a retry may work. Anything else is server_error. A request that ended keeps its
// context's error, also 503.
func apiFailure(err error, action string) error {
	if apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServerTimeout(err) || utilnet.IsConnectionRefused(err) {
		return fmt.Errorf("registration: %s: %w: %w", action, register.ErrRegistrarUnavailable, err)
	}
	return fmt.Errorf("registration: %s: %w", action, err)
}
