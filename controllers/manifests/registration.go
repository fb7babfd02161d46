package manifests

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/controllers/policy"
	"github.com/latchkey-dev/latchkey/server/oauth2/register"
)

// AdmitRegistration returns the check of the embedded registrar (server/registration.Memory's
// Admit): a registration into namespace (or an update) whose client would break an
// OAuthClientPolicy of that namespace (or the default policy), as last loaded from the folder,
// is refused with
// invalid_client_metadata naming the policy, the rule and the value, as the cluster's registrar
// refuses it.
func (l *Loader) AdmitRegistration(namespace string) func(clientID string, md register.ClientMetadata) error {
	return func(clientID string, md register.ClientMetadata) error {
		ps := l.policies.Load()
		if ps == nil {
			return nil
		}
		if vs := policy.Evaluate(registeredClient(namespace, clientID, md), ps.of(namespace)); len(vs) > 0 {
			return register.ErrInvalidClientMetadata.WithDescription(fmt.Sprintf("The client metadata breaks a policy: %.300s", policy.Message(vs)))
		}
		return nil
	}
}

// registeredClient is the OAuthClient the cluster's registrar would create for the metadata
// (controllers/registration), as far as policies look at it.
func registeredClient(namespace, id string, md register.ClientMetadata) *v1alpha1.OAuthClient {
	oc := &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: id, Labels: map[string]string{v1alpha1.LabelRegistered: "true"}},
		Spec: v1alpha1.OAuthClientSpec{
			ClientID:                id,
			Type:                    v1alpha1.ClientTypeConfidential,
			RedirectURIs:            slices.Clone(md.RedirectURIs),
			Scopes:                  slices.Clone(md.Scopes),
			TokenEndpointAuthMethod: v1alpha1.TokenEndpointAuthMethod(md.TokenEndpointAuthMethod),
			BackchannelLogoutURI:    md.BackchannelLogoutURI,
		},
	}
	for _, g := range md.GrantTypes {
		oc.Spec.GrantTypes = append(oc.Spec.GrantTypes, v1alpha1.GrantType(g))
	}
	if md.Public() {
		oc.Spec.Type = v1alpha1.ClientTypePublic
	}
	return oc
}
