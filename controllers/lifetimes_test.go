package controllers

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/latchkey-dev/latchkey/api/v1alpha1"
	"github.com/latchkey-dev/latchkey/server/registry"
)

func TestLifetimesAreServedFromSecondsAndDurations(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name      string
		lifetimes v1alpha1.TokenLifetimes
		access    time.Duration
		refresh   time.Duration
	}{
		{"integer seconds, stored as JSON numbers, are seconds",
			v1alpha1.TokenLifetimes{AccessToken: ptr.To(intstr.FromInt(600)), RefreshToken: ptr.To(intstr.FromInt(86400))},
			10 * time.Minute, 24 * time.Hour},
		{"duration strings are durations",
			v1alpha1.TokenLifetimes{AccessToken: ptr.To(intstr.FromString("15m")), RefreshToken: ptr.To(intstr.FromString("720h"))},
			15 * time.Minute, 720 * time.Hour},
		{"absent lifetimes are left to the server's defaults", v1alpha1.TokenLifetimes{}, 0, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oc := confidentialClient(ns, "lifetimes-"+string(rune('a'+i)))
			oc.Spec.Lifetimes = &tt.lifetimes
			require.NoError(t, suite.client.Create(t.Context(), oc))
			waitReady(t, client.ObjectKeyFromObject(oc), metav1.ConditionTrue, v1alpha1.ReasonReady)
			waitServed(t, oc.Name+"."+ns, ns+"/"+oc.Name, func(c *assert.CollectT, cl *registry.Client) {
				assert.Equal(c, tt.access, cl.AccessTokenLifetime)
				assert.Equal(c, tt.refresh, cl.RefreshTokenLifetime)
			})
		})
	}
}
