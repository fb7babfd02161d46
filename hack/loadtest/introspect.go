package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// introspectionLoad runs wrk against the introspection endpoint of the server: the
// resource server asks about one client_credentials access token of bench-<alg> over and over.
// The token must introspect as active before and after the load (wrk only sees the 200s).
func introspectionLoad(ctx context.Context, o options, srv *server, alg, dir string) (result, error) {
	base := srv.base
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	status, body, err := post(ctx, client, base+"/oauth2/token", basic("bench-"+alg, "bench-secret-"+alg), "grant_type=client_credentials")
	if err != nil {
		return result{}, fmt.Errorf("client_credentials: %w", err)
	}
	var issued struct {
		AccessToken string `json:"access_token"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &issued) != nil || issued.AccessToken == "" {
		return result{}, fmt.Errorf("client_credentials: status %d: %s", status, body)
	}
	form := url.Values{"token": {issued.AccessToken}}.Encode()
	resource := basic("resource", "resource-secret")
	active := func() error {
		status, body, err := post(ctx, client, base+"/oauth2/introspect", resource, form)
		var answer struct {
			Active bool `json:"active"`
		}
		switch {
		case err != nil:
			return err
		case status != http.StatusOK || json.Unmarshal(body, &answer) != nil || !answer.Active:
			return fmt.Errorf("the token does not introspect as active: status %d: %s", status, body)
		}
		return nil
	}
	if err := active(); err != nil {
		return result{}, err
	}
	res, err := load(ctx, o, srv, "/oauth2/introspect", form, resource, dir)
	if err != nil {
		return result{}, err
	}
	if err := active(); err != nil {
		return result{}, errors.Join(errors.New("after the load"), err)
	}
	return res, nil
}
