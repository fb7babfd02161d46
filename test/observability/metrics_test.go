package observability

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrape reads the server's /metrics: each series name (a histogram's _bucket, _count and _sum
// too) with the label names of its samples, and the samples as text lines.
func scrape(t *testing.T) (labels map[string]map[string]bool, families map[string]*dto.MetricFamily) {
	t.Helper()
	res, err := http.Get(srv.MetricsURL() + "/metrics") //nolint:noctx // a test's GET
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err = parser.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	labels = map[string]map[string]bool{}
	add := func(name string, m *dto.Metric, extra ...string) {
		if labels[name] == nil {
			labels[name] = map[string]bool{}
		}
		for _, l := range m.GetLabel() {
			labels[name][l.GetName()] = true
		}
		for _, l := range extra {
			labels[name][l] = true
		}
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetType() == dto.MetricType_HISTOGRAM {
				add(name+"_bucket", m, "le")
				add(name+"_count", m)
				add(name+"_sum", m)
				continue
			}
			add(name, m)
		}
	}
	return labels, families
}

// value is the value of the series of a family with exactly these labels, and whether it exists.
func value(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := families[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			match = match && got[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// targetLabels are the labels a Prometheus Operator scrape adds to every series; a metric's own
// label of one of these names would be renamed exported_<name>.
var targetLabels = []string{"namespace", "service", "pod", "container", "endpoint", "job", "instance"} //nolint:gochecknoglobals // a fixed list

func TestMetricsOfARealServer(t *testing.T) {
	res := tokenRequest(t, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	labels, families := scrape(t)

	t.Run("build info names the version and the Go version", func(t *testing.T) {
		// The version `latchkey version` prints: the stamped one, else the module's, else dev.
		out, err := exec.Command(binary, "version").Output()
		require.NoError(t, err)
		version, ok := strings.CutPrefix(strings.SplitN(string(out), "\n", 2)[0], "latchkey ")
		require.True(t, ok, "latchkey version printed %q", out)
		v, ok := value(families, "latchkey_build_info", map[string]string{"version": version, "go_version": runtime.Version()})
		require.True(t, ok, "latchkey_build_info{version=%s, go_version=%s}", version, runtime.Version())
		assert.InDelta(t, 1, v, 0)
	})
	t.Run("tokens issued are counted by client_namespace", func(t *testing.T) {
		v, ok := value(families, "latchkey_tokens_issued_total",
			map[string]string{"grant_type": "client_credentials", "client_id": clientID, "client_namespace": "payments"})
		require.True(t, ok)
		assert.GreaterOrEqual(t, v, 1.0)
	})
	t.Run("request durations have the status code", func(t *testing.T) {
		v, ok := value(families, "latchkey_request_duration_seconds", map[string]string{"handler": "token", "code": "200"})
		require.True(t, ok)
		assert.GreaterOrEqual(t, v, 1.0)
	})
	t.Run("no metric of ours has a label a scrape adds", func(t *testing.T) {
		for name, ls := range labels {
			if !strings.HasPrefix(name, "latchkey_") {
				continue
			}
			for _, l := range targetLabels {
				assert.False(t, ls[l], "%s has the label %s (a scrape renames it exported_%s)", name, l, l)
			}
		}
	})
	t.Run("kind labels are Kubernetes kind names", func(t *testing.T) {
		kinds := []string{"OAuthClient", "Scope", "User", "WorkloadIssuer", "OAuthClientPolicy", "OIDCIdentityProvider", "LDAPIdentityProvider", "GitHubIdentityProvider", "ProtectedResource", "Secret"}
		seen := 0
		for name, f := range families {
			if !strings.HasPrefix(name, "latchkey_") {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "kind" {
						seen++
						assert.Contains(t, kinds, l.GetValue(), "kind of %s", name)
					}
				}
			}
		}
		assert.Positive(t, seen)
		v, ok := value(families, "latchkey_registry_objects", map[string]string{"kind": "OAuthClient"})
		require.True(t, ok)
		assert.InDelta(t, 1, v, 0)
	})
	t.Run("a healthy server shows zero errors rather than no series", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			labels map[string]string
		}{
			{"latchkey_store_errors_total", map[string]string{"backend": "memory", "operation": "take_code"}},
			{"latchkey_store_errors_total", map[string]string{"backend": "memory", "operation": "rotate_refresh"}},
			{"latchkey_store_operations_total", map[string]string{"backend": "memory", "operation": "put_code", "result": "unavailable"}},
			{"latchkey_oauth_errors_total", map[string]string{"handler": "token", "error": "server_error"}},
			{"latchkey_oauth_errors_total", map[string]string{"handler": "token", "error": "invalid_grant"}},
			{"latchkey_oauth_errors_total", map[string]string{"handler": "userinfo", "error": "invalid_token"}},
			{"latchkey_oauth_errors_total", map[string]string{"handler": "authorize", "error": "access_denied"}},
			{"latchkey_client_auth_failures_total", map[string]string{"method": "private_key_jwt"}},
			{"latchkey_rate_limited_total", map[string]string{"reason": "client_rate_limit"}},
			{"latchkey_backchannel_logout_deliveries_total", map[string]string{"result": "failed"}},
		} {
			v, ok := value(families, tc.name, tc.labels)
			if assert.True(t, ok, "%s%v", tc.name, tc.labels) {
				assert.InDelta(t, 0, v, 0, "%s%v", tc.name, tc.labels)
			}
		}
	})
}

// The chart's queries, as the rule and dashboard files hold them.
var (
	templateAction = regexp.MustCompile(`\{\{-?[^}]*\}\}`)                         //nolint:gochecknoglobals // a fixed pattern
	selector       = regexp.MustCompile(`\b(latchkey_[a-z_]+|up)\b(\{[^}]*\})?`)   //nolint:gochecknoglobals // a fixed pattern
	matcher        = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`) //nolint:gochecknoglobals // a fixed pattern
	grouping       = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)          //nolint:gochecknoglobals // a fixed pattern
)

// chartQueries are the PromQL expressions of the PrometheusRule template (one per rule) and of
// the dashboard (one per target), with the template actions removed.
func chartQueries(t *testing.T) map[string]string {
	t.Helper()
	chart := filepath.Join("..", "..", "charts", "latchkey")
	out := map[string]string{}
	rule, err := os.ReadFile(filepath.Join(chart, "templates", "prometheusrule.yaml"))
	require.NoError(t, err)
	for i, part := range strings.Split(string(rule), "- alert: ")[1:] {
		name, _, _ := strings.Cut(part, "\n")
		expr := part[strings.Index(part, "expr: |")+len("expr: |") : strings.Index(part, "labels:")]
		require.NotEmpty(t, strings.TrimSpace(expr), "rule %d", i)
		out["rule "+name] = templateAction.ReplaceAllString(expr, "")
	}
	b, err := os.ReadFile(filepath.Join(chart, "dashboards", "latchkey.json"))
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(b, &dash))
	for _, p := range dash.Panels {
		for i, tg := range p.Targets {
			out["panel "+p.Title+" #"+string(rune('A'+i))] = tg.Expr
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			out["variable "+v.Name] = v.Definition
		}
	}
	return out
}

// TestTheChartsRulesAndDashboardQuerySeriesTheServerHas checks every PromQL expression of the
// chart's PrometheusRule and Grafana dashboard against a scrape of a real server: each metric
// it names exists, and each label it matches or groups by is a label of one of the expression's
// metrics (or a label the scrape adds).
func TestTheChartsRulesAndDashboardQuerySeriesTheServerHas(t *testing.T) {
	res := tokenRequest(t, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	labels, _ := scrape(t)
	queries := chartQueries(t)
	require.GreaterOrEqual(t, len(queries), 10, "rules and panels found: %v", queries)
	for where, expr := range queries {
		t.Run(where, func(t *testing.T) {
			known := map[string]bool{"__name__": true}
			for _, l := range targetLabels {
				known[l] = true
			}
			var metrics []string
			for _, m := range selector.FindAllStringSubmatch(expr, -1) {
				name := m[1]
				metrics = append(metrics, name)
				if name == "up" {
					continue
				}
				ls, ok := labels[name]
				if !assert.True(t, ok, "%s: no series %s in the scrape", expr, name) {
					continue
				}
				for l := range ls {
					known[l] = true
				}
			}
			require.NotEmpty(t, metrics, "no metric in %q", expr)
			var used []string
			for _, m := range selector.FindAllStringSubmatch(expr, -1) {
				for _, mm := range matcher.FindAllStringSubmatch(m[2], -1) {
					used = append(used, mm[1])
				}
			}
			for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
				for _, l := range strings.Split(g[1], ",") {
					if l = strings.TrimSpace(l); l != "" {
						used = append(used, l)
					}
				}
			}
			if strings.HasPrefix(expr, "label_values(") {
				used = append(used, strings.TrimSpace(strings.TrimSuffix(strings.SplitN(expr, ",", 2)[1], ")")))
			}
			for _, l := range used {
				assert.True(t, known[l], "%s: label %q is not a label of %v", expr, l, slices.Compact(metrics))
			}
		})
	}
}
