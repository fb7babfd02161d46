package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPromptTwice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []string
		readErr error
		want    string
		wantErr string
	}{
		{name: "the same password twice is taken", answers: []string{"pw", "pw"}, want: "pw"},
		{name: "two different passwords are refused", answers: []string{"pw", "px"}, wantErr: "the passwords differ"},
		{name: "an empty password is refused before the second prompt", answers: []string{""}, wantErr: "empty password"},
		{name: "a terminal that cannot be read is an error", readErr: errors.New("no tty"), wantErr: "read the password: no tty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prompts []string
			got, err := promptTwice(func(prompt string) ([]byte, error) {
				prompts = append(prompts, prompt)
				if tc.readErr != nil {
					return nil, tc.readErr
				}
				a := tc.answers[0]
				tc.answers = tc.answers[1:]
				return []byte(a), nil
			})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
			assert.Equal(t, []string{"Password: ", "Password again: "}, prompts)
		})
	}
}
