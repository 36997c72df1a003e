package vaultstore

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// encodeRecord turns a record into KV v2 data: its JSON object as a map.
func encodeRecord(rec Record) (map[string]any, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode record %s/%s: %w", rec.Carrier, rec.Environment, err)
	}
	var data map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	// Numbers stay exact (json.Number) rather than becoming float64.
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		return nil, fmt.Errorf("encode record %s/%s: %w", rec.Carrier, rec.Environment, err)
	}
	return data, nil
}

// decodeRecord parses the KV v2 data found at the path of carrier/env. The
// data is outside input: anyone with write access to the path may have put
// anything there.
func decodeRecord(data map[string]any, carrier string, env ups.Environment) (Record, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Record{}, fmt.Errorf("record %s/%s: re-encode vault data: %w", carrier, env, err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, fmt.Errorf("record %s/%s: malformed data in vault: %w", carrier, env, err)
	}
	// The path is the record's identity. A body naming another carrier or
	// environment was copied by hand; using it could send a test token to
	// production (or the reverse), so refuse it rather than guess.
	if rec.Carrier == "" {
		rec.Carrier = carrier
	}
	if rec.Environment == "" {
		rec.Environment = env
	}
	if rec.Carrier != carrier || rec.Environment != env {
		return Record{}, fmt.Errorf("record at %s/%s names carrier %q environment %q: it was copied from elsewhere; delete it and log in again",
			carrier, env, rec.Carrier, rec.Environment)
	}
	if err := validateRecord(rec); err != nil {
		return Record{}, fmt.Errorf("malformed data in vault: %w", err)
	}
	return rec, nil
}

// sameContent reports whether two records would be stored identically
// (Version aside).
func sameContent(a, b Record) bool {
	ab, errA := json.Marshal(a)
	bb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ab, bb)
}
