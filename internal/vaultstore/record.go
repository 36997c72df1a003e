package vaultstore

import (
	"fmt"
	"regexp"
	"time"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// Record is what is stored per carrier and environment.
//
// In Vault the KV v2 data of a record is its JSON object as a map of fields
// (carrier, environment, grant, token{...}, rejected, rejected_at,
// last_refresh, updated_at, updated_by), so `vault kv get -format=json`
// shows it as the proxy sees it. Version is not stored: it is the KV v2
// version the record was read at.
type Record struct {
	Carrier     string          `json:"carrier"`
	Environment ups.Environment `json:"environment"`
	Grant       string          `json:"grant"` // authorization_code | client_credentials
	Token       ups.Token       `json:"token"`
	// Rejected is set when UPS rejected the refresh token: only a login helps.
	Rejected    bool      `json:"rejected,omitempty"`
	RejectedAt  time.Time `json:"rejected_at,omitzero"`
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	// ForcedRenewalAt is when a replica last renewed the pair because UPS
	// refused its access token (401); equal to LastRefresh when this pair
	// came from that renewal. The broker forces at most one renewal per
	// token and none within a floor of the last, across replicas.
	ForcedRenewalAt time.Time `json:"forced_renewal_at,omitzero"`
	UpdatedAt       time.Time `json:"updated_at"`
	UpdatedBy       string    `json:"updated_by"` // hostname/pid or "login"
	// LeaseHolder/LeaseUntil: a replica refreshing this pair claims the
	// record (check-and-set) so that the others wait instead of spending
	// the same single-use refresh token.
	LeaseHolder string    `json:"lease_holder,omitempty"`
	LeaseUntil  time.Time `json:"lease_until,omitzero"`
	// Version is the KV v2 version read; 0 means not stored yet. Put uses it
	// as the check-and-set version.
	Version int `json:"-"`
}

// String describes the record without token values, so a record can be
// logged or printed with %v and %+v.
func (r Record) String() string {
	rejected := ""
	if r.Rejected {
		rejected = " rejected_at=" + formatTime(r.RejectedAt)
	}
	return fmt.Sprintf("vaultstore.Record{carrier=%s environment=%s grant=%s version=%d%s last_refresh=%s updated_at=%s updated_by=%q token=%s}",
		r.Carrier, r.Environment, r.Grant, r.Version, rejected, formatTime(r.LastRefresh), formatTime(r.UpdatedAt), r.UpdatedBy, r.Token)
}

// GoString keeps %#v from printing token values too.
func (r Record) GoString() string { return r.String() }

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// Key names one stored record.
type Key struct {
	Carrier     string
	Environment ups.Environment
}

// String is "carrier/environment".
func (k Key) String() string { return k.Carrier + "/" + string(k.Environment) }

// pathSegment is what a carrier name (and each segment of the mount and
// prefix) may look like: it becomes one element of a Vault path, so a slash
// or anything URL-special would address a different secret.
var pathSegment = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// maxSegment keeps names to something a human typed; Vault itself accepts far
// longer paths, so this only guards against garbage.
const maxSegment = 128

func validSegment(s string) bool {
	// "." and ".." match the character class but would walk the path.
	return len(s) <= maxSegment && pathSegment.MatchString(s) && s != "." && s != ".."
}

func validateKey(carrier string, env ups.Environment) error {
	if !validSegment(carrier) {
		return fmt.Errorf("invalid carrier name %q: use 1-%d letters, digits, '_', '.' or '-'", carrier, maxSegment)
	}
	if !env.Valid() {
		return fmt.Errorf("invalid environment %q for carrier %q: want %q or %q", env, carrier, ups.Test, ups.Production)
	}
	return nil
}

func validateRecord(rec Record) error {
	if err := validateKey(rec.Carrier, rec.Environment); err != nil {
		return err
	}
	if rec.Grant != ups.GrantAuthorizationCode && rec.Grant != ups.GrantClientCredentials {
		return fmt.Errorf("record %s/%s: invalid grant %q: want %q or %q",
			rec.Carrier, rec.Environment, rec.Grant, ups.GrantAuthorizationCode, ups.GrantClientCredentials)
	}
	if rec.Version < 0 {
		return fmt.Errorf("record %s/%s: negative version %d", rec.Carrier, rec.Environment, rec.Version)
	}
	return nil
}
