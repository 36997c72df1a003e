package ups

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTokenResponse(t *testing.T) {
	received := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		body    string
		want    Token // compared when wantErr is ""
		wantErr string
	}{
		{
			name: "UPS string-typed fields become numbers and absolute times",
			body: upsTokenJSON,
			want: Token{
				TokenType: "Bearer", AccessToken: "ACCESS-abc123", RefreshToken: "REFRESH-new456",
				ClientID: testClientID, Status: "approved", RefreshTokenStatus: "approved",
				IssuedAt: time.UnixMilli(1772366400000).UTC(), ExpiresAt: received.Add(14399 * time.Second),
				RefreshIssuedAt: time.UnixMilli(1772366400000).UTC(), RefreshExpiresAt: received.Add(5183999 * time.Second),
			},
		},
		{
			name: "a one-hour access token is not mistaken for the old four-hour lifetime",
			body: `{"access_token":"A","expires_in":"3599","refresh_count":"7"}`,
			want: Token{TokenType: "Bearer", AccessToken: "A", IssuedAt: received, ExpiresAt: received.Add(3599 * time.Second), RefreshCount: 7},
		},
		{
			name: "JSON numbers instead of strings are accepted",
			body: `{"access_token":"A","expires_in":14399,"issued_at":1772366400000,"refresh_token":"R","refresh_token_expires_in":604799,"refresh_count":2}`,
			want: Token{
				TokenType: "Bearer", AccessToken: "A", RefreshToken: "R", RefreshCount: 2,
				IssuedAt: time.UnixMilli(1772366400000).UTC(), ExpiresAt: received.Add(14399 * time.Second),
				RefreshIssuedAt: received, RefreshExpiresAt: received.Add(604799 * time.Second),
			},
		},
		{
			name: "whitespace around a number in a string is tolerated",
			body: `{"access_token":"A","expires_in":" 60 "}`,
			want: Token{TokenType: "Bearer", AccessToken: "A", IssuedAt: received, ExpiresAt: received.Add(time.Minute)},
		},
		{
			name: "empty optional numbers count as absent",
			body: `{"access_token":"A","expires_in":"60","issued_at":"","refresh_count":""}`,
			want: Token{TokenType: "Bearer", AccessToken: "A", IssuedAt: received, ExpiresAt: received.Add(time.Minute)},
		},
		{name: "HTML page", body: "\n<html><body>Bad Gateway</body></html>", wantErr: "HTML"},
		{name: "empty body", body: "  ", wantErr: "empty body"},
		{name: "JSON null", body: "null", wantErr: "not a JSON object"},
		{name: "truncated JSON", body: `{"access_token":"A","expires_in":"6`, wantErr: "invalid JSON"},
		{name: "two objects", body: `{"access_token":"A","expires_in":"60"}{}`, wantErr: "data after the object"},
		{name: "missing access token", body: `{"expires_in":"60"}`, wantErr: "no access_token"},
		{name: "access token of the wrong type", body: `{"access_token":12345,"expires_in":"60"}`, wantErr: "access_token: want a JSON string"},
		{name: "missing expires_in", body: `{"access_token":"A"}`, wantErr: "no expires_in"},
		{name: "non-numeric expires_in", body: `{"access_token":"A","expires_in":"4h"}`, wantErr: `expires_in: "4h" is not a whole number`},
		{name: "fractional expires_in", body: `{"access_token":"A","expires_in":"1.5"}`, wantErr: "not a whole number"},
		{name: "zero expires_in", body: `{"access_token":"A","expires_in":"0"}`, wantErr: "expires_in"},
		{name: "negative refresh lifetime", body: `{"access_token":"A","expires_in":"60","refresh_token_expires_in":"-1"}`, wantErr: "refresh_token_expires_in"},
		{name: "absurd lifetime", body: `{"access_token":"A","expires_in":"99999999999999"}`, wantErr: "out of range"},
		{name: "boolean refresh count", body: `{"access_token":"A","expires_in":"60","refresh_count":true}`, wantErr: "refresh_count: want a number"},
		{name: "negative refresh count", body: `{"access_token":"A","expires_in":"60","refresh_count":"-3"}`, wantErr: "refresh_count"},
		{name: "issued_at not a timestamp", body: `{"access_token":"A","expires_in":"60","issued_at":"yesterday"}`, wantErr: "issued_at"},
		{name: "issued_at beyond year 9999", body: `{"access_token":"A","expires_in":"60","issued_at":"999999999999999999"}`, wantErr: "issued_at"},
		{name: "huge exponent", body: `{"access_token":"A","expires_in":1e400}`, wantErr: "expires_in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTokenResponse([]byte(tt.body), received)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want ErrMalformedResponse mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if got != tt.want {
				t.Errorf("token =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestParseTokenResponseErrorsNeverQuoteTokenValues(t *testing.T) {
	body := `{"access_token":"ACCESS-SECRET","refresh_token":"REFRESH-SECRET","expires_in":"ACCESS-SECRET"}`
	_, err := ParseTokenResponse([]byte(body), time.Now())
	if err == nil {
		t.Fatal("want an error")
	}
	// expires_in is a number field: quoting it is fine unless it is
	// itself a token, which a broken server could do.
	if strings.Contains(err.Error(), "REFRESH-SECRET") {
		t.Errorf("error quotes the refresh token: %v", err)
	}
}

func FuzzParseTokenResponse(f *testing.F) {
	for _, seed := range []string{
		upsTokenJSON,
		`{"access_token":"A","expires_in":14399}`,
		`{"access_token":"A","expires_in":"1.4399e4","refresh_count":"0"}`,
		`{"access_token":"A","expires_in":"60","issued_at":"-1"}`,
		`<html>503</html>`,
		`{"response":{"errors":[{"code":"10400","message":"Invalid Refresh Token"}]}}`,
		`{"access_token":null,"expires_in":null}`,
		`{"access_token":"A","expires_in":"9223372036854775807"}`,
		``, `null`, `[]`, `{}`,
	} {
		f.Add([]byte(seed))
	}
	received := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := ParseTokenResponse(body, received)
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v does not wrap ErrMalformedResponse", err)
			}
			return
		}
		if tok.AccessToken == "" {
			t.Fatal("success without an access token")
		}
		if !tok.ExpiresAt.After(received) {
			t.Fatalf("success with expiry %v not after receipt", tok.ExpiresAt)
		}
		if !tok.RefreshExpiresAt.IsZero() && !tok.RefreshExpiresAt.After(received) {
			t.Fatalf("refresh expiry %v not after receipt", tok.RefreshExpiresAt)
		}
		if tok.RefreshCount < 0 {
			t.Fatalf("negative refresh count %d", tok.RefreshCount)
		}
	})
}

// TokenResponse, as the simulator and the proxy's OAuth endpoint write it,
// marshals to exactly what UPS sends and parses back to the same token.
func TestTokenResponseIsUPSWireFormat(t *testing.T) {
	issued := time.UnixMilli(1772366400000).UTC()
	r := TokenResponse{
		RefreshTokenExpiresIn: FormatLifetime(60 * 24 * time.Hour),
		RefreshTokenStatus:    "approved",
		TokenType:             "Bearer",
		IssuedAt:              FormatEpochMillis(issued),
		ClientID:              testClientID,
		AccessToken:           "ACCESS-abc123",
		RefreshToken:          "REFRESH-new456",
		Scope:                 "",
		RefreshTokenIssuedAt:  FormatEpochMillis(issued),
		ExpiresIn:             FormatLifetime(4 * time.Hour),
		RefreshCount:          "0",
		Status:                "approved",
	}
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(upsTokenJSON), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TokenResponse marshals to\n%s\nwant the fields and values of\n%s", body, upsTokenJSON)
	}

	received := issued.Add(time.Second)
	tok, err := ParseTokenResponse(body, received)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresAt != received.Add(14399*time.Second) || tok.RefreshExpiresAt != received.Add(5183999*time.Second) {
		t.Errorf("lifetimes parse to %v and %v after %v, want 14399 s and 5183999 s", tok.ExpiresAt, tok.RefreshExpiresAt, received)
	}
}

func TestFormatLifetime(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{4 * time.Hour, "14399"},
		{60 * 24 * time.Hour, "5183999"},
		{1500 * time.Millisecond, "1"}, // tiny test TTLs are not shortened to nothing
		{-time.Second, "0"},
	} {
		if got := FormatLifetime(tc.d); got != tc.want {
			t.Errorf("FormatLifetime(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
