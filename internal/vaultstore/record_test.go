package vaultstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
)

const (
	secretAccess  = "AT-very-secret-access-token-value"
	secretRefresh = "RT-very-secret-refresh-token-value"
)

// sampleRecord is a fully populated record; every field differs from its
// zero value so a round trip that drops one is noticed.
func sampleRecord(carrier string, env ups.Environment) Record {
	base := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	return Record{
		Carrier:     carrier,
		Environment: env,
		Grant:       ups.GrantAuthorizationCode,
		Token: ups.Token{
			TokenType:          "Bearer",
			AccessToken:        secretAccess,
			RefreshToken:       secretRefresh,
			Scope:              "read write",
			ClientID:           "client-id-1",
			Status:             "approved",
			RefreshTokenStatus: "approved",
			IssuedAt:           base,
			ExpiresAt:          base.Add(4 * time.Hour),
			RefreshIssuedAt:    base.Add(-time.Hour),
			RefreshExpiresAt:   base.Add(60 * 24 * time.Hour),
			RefreshCount:       7,
		},
		Rejected:    true,
		RejectedAt:  base.Add(time.Minute),
		LastRefresh: base.Add(-30 * time.Minute),
		UpdatedAt:   base.Add(2 * time.Minute),
		UpdatedBy:   "host-a/1234",
	}
}

func TestRecordNeverPrintsTokenValuesWhateverTheVerb(t *testing.T) {
	rec := sampleRecord("main", ups.Production)
	rec.Version = 3
	for _, tc := range []struct {
		name string
		out  string
	}{
		{"String method", rec.String()},
		{"%v of a value", fmt.Sprintf("%v", rec)},
		{"%+v of a value", fmt.Sprintf("%+v", rec)},
		{"%#v of a value", fmt.Sprintf("%#v", rec)},
		{"%s of a value", fmt.Sprintf("%s", rec)},
		{"%v of a pointer", fmt.Sprintf("%v", &rec)},
		{"%+v of a pointer", fmt.Sprintf("%+v", &rec)},
		{"%v of a slice", fmt.Sprintf("%v", []Record{rec})},
		{"%+v of a struct holding a record", fmt.Sprintf("%+v", struct{ R Record }{rec})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, secret := range []string{secretAccess, secretRefresh} {
				if strings.Contains(tc.out, secret) {
					t.Fatalf("output contains a token value: %s", tc.out)
				}
			}
			// Still useful: it names the record and says tokens are present.
			for _, want := range []string{"main", "production", "version=3", "<set>"} {
				if !strings.Contains(tc.out, want) {
					t.Errorf("output %q lacks %q", tc.out, want)
				}
			}
		})
	}
}

func TestClientOptionsAndTokenAuthNeverPrintTheVaultToken(t *testing.T) {
	const vaultToken = "hvs.super-secret-vault-token"
	opts := ClientOptions{Address: "http://127.0.0.1:8200", Token: vaultToken}
	auth := TokenAuth{Token: vaultToken}
	for _, out := range []string{
		fmt.Sprintf("%v", opts), fmt.Sprintf("%+v", opts), fmt.Sprintf("%#v", opts), fmt.Sprintf("%+v", &opts),
		fmt.Sprintf("%v", auth), fmt.Sprintf("%+v", auth), fmt.Sprintf("%#v", auth),
	} {
		if strings.Contains(out, vaultToken) {
			t.Errorf("output contains the vault token: %s", out)
		}
		if !strings.Contains(out, "<set>") {
			t.Errorf("output %q does not say the token is set", out)
		}
	}
}

func TestCarrierNamesMustBePathSafe(t *testing.T) {
	for _, tc := range []struct {
		name    string
		carrier string
		ok      bool
	}{
		{"plain name", "main", true},
		{"letters digits dot dash underscore", "Acme_2.east-1", true},
		{"longest allowed", strings.Repeat("a", maxSegment), true},
		{"empty", "", false},
		{"slash would address another secret", "main/production", false},
		{"parent directory", "..", false},
		{"current directory", ".", false},
		{"traversal prefix", "../main", false},
		{"space", "main carrier", false},
		{"query character", "main?list=true", false},
		{"percent-encoded slash", "main%2Fx", false},
		{"non-ASCII letter", "maïn", false},
		{"newline", "main\n", false},
		{"too long", strings.Repeat("a", maxSegment+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateKey(tc.carrier, ups.Test)
			if (err == nil) != tc.ok {
				t.Fatalf("validateKey(%q) = %v, want ok=%v", tc.carrier, err, tc.ok)
			}
		})
	}
}

func TestRecordsWithUnknownGrantOrEnvironmentAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Record)
	}{
		{"unknown grant", func(r *Record) { r.Grant = "password" }},
		{"empty grant", func(r *Record) { r.Grant = "" }},
		{"unknown environment", func(r *Record) { r.Environment = "staging" }},
		{"negative version", func(r *Record) { r.Version = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := sampleRecord("main", ups.Test)
			tc.edit(&rec)
			if err := validateRecord(rec); err == nil {
				t.Fatal("validateRecord accepted it")
			}
		})
	}
}

func TestDecodeRefusesARecordCopiedFromAnotherEnvironment(t *testing.T) {
	data, err := encodeRecord(sampleRecord("main", ups.Test))
	if err != nil {
		t.Fatal(err)
	}
	_, err = decodeRecord(data, "main", ups.Production)
	if err == nil || !strings.Contains(err.Error(), "copied") {
		t.Fatalf("decodeRecord of a test record at the production path = %v, want a 'copied' error", err)
	}
}

func TestDecodeFillsCarrierAndEnvironmentFromThePathWhenAbsent(t *testing.T) {
	data, err := encodeRecord(sampleRecord("main", ups.Test))
	if err != nil {
		t.Fatal(err)
	}
	delete(data, "carrier")
	delete(data, "environment")
	rec, err := decodeRecord(data, "main", ups.Test)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Carrier != "main" || rec.Environment != ups.Test {
		t.Fatalf("got %s/%s, want main/test", rec.Carrier, rec.Environment)
	}
}

// FuzzDecodeRecord feeds arbitrary KV data (what anyone with write access to
// the Vault path could store) to the decoder: it must never panic, and what
// it accepts must survive an encode/decode round trip unchanged.
func FuzzDecodeRecord(f *testing.F) {
	good, err := json.Marshal(sampleRecord("main", ups.Production))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(good))
	f.Add(`{}`)
	f.Add(`{"grant":"client_credentials","token":{"access_token":"x","expires_at":"2026-01-01T00:00:00Z"}}`)
	f.Add(`{"carrier":"other","environment":"production","grant":"authorization_code"}`)
	f.Add(`{"grant":"authorization_code","token":{"refresh_count":"7"}}`)
	f.Add(`{"grant":"authorization_code","token":{"refresh_count":1e99}}`)
	f.Add(`{"grant":"authorization_code","updated_at":"not a time"}`)
	f.Add(`{"grant":"authorization_code","token":null,"rejected":"yes"}`)
	f.Fuzz(func(t *testing.T, body string) {
		var data map[string]any
		if json.Unmarshal([]byte(body), &data) != nil {
			return
		}
		rec, err := decodeRecord(data, "main", ups.Production)
		if err != nil {
			return
		}
		if rec.Carrier != "main" || rec.Environment != ups.Production {
			t.Fatalf("accepted a record for %s/%s at main/production", rec.Carrier, rec.Environment)
		}
		again, err := encodeRecord(rec)
		if err != nil {
			// e.g. a year beyond 9999 decodes but does not encode: Put
			// reports it, nothing is lost.
			return
		}
		rec2, err := decodeRecord(again, "main", ups.Production)
		if err != nil {
			t.Fatalf("re-decoding an accepted record failed: %v", err)
		}
		if !sameContent(rec, rec2) {
			t.Fatalf("round trip changed the record:\n%s\n%s", rec, rec2)
		}
	})
}
