{{- /* Generated from config/rbac/role.yaml by hack/chart-sync.sh. DO NOT EDIT. */}}
{{- /* The ClusterRole's rules on Secrets, ConfigMaps, OAuthClients, OAuthClientPolicies and ProtectedResources: cluster-wide in clusterrole.yaml,
or in a Role per watched namespace (rbac.yaml) when .Values.watchNamespaces is set. */}}
{{- define "latchkey.namespacedRules" -}}
- apiGroups:
  - ""
  resources:
  - configmaps
  verbs:
  - create
  - delete
  - get
  - list
  - patch
  - update
  - watch
- apiGroups:
  - ""
  resources:
  - secrets
  verbs:
  - create
  - delete
  - get
  - list
  - update
  - watch
- apiGroups:
  - oauth.latchkey.dev
  resources:
  - oauthclientpolicies
  - protectedresources
  verbs:
  - get
  - list
  - watch
- apiGroups:
  - oauth.latchkey.dev
  resources:
  - oauthclientpolicies/status
  - oauthclients/status
  - protectedresources/status
  verbs:
  - patch
  - update
- apiGroups:
  - oauth.latchkey.dev
  resources:
  - oauthclients
  verbs:
  - create
  - delete
  - get
  - list
  - patch
  - update
  - watch
- apiGroups:
  - oauth.latchkey.dev
  resources:
  - oauthclients/finalizers
  verbs:
  - update
{{- end }}
