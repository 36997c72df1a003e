package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// Errors of ReadField, besides ErrUnavailable and ErrPermissionDenied.
var (
	// ErrNoSecret means nothing is stored at the path (or its latest
	// version is deleted).
	ErrNoSecret = errors.New("no secret at this vault path")
	// ErrNoField means the secret exists but has no such field, or the
	// field is empty or not a string.
	ErrNoField = errors.New("no such field in the vault secret")
)

// maxFieldNames bounds the list of field names an ErrNoField error shows.
const maxFieldNames = 10

// ReadField reads one string field of the latest version of a KV version 2
// secret, with the client's own token (a Session's client, so the proxy's
// identity and policy). path is the API path, <mount>/data/<name> (the path
// a policy names, e.g. secret/data/upsproxy/carriers/main), without leading
// or trailing slash.
//
// Errors name the path and the field, never a value: ErrNoSecret,
// ErrNoField (listing the secret's field names, which are not secret),
// ErrPermissionDenied or ErrUnavailable (errors.Is).
func ReadField(ctx context.Context, client *vaultapi.Client, path, field string) (string, error) {
	if client == nil {
		return "", errors.New("vaultstore: no vault client")
	}
	secret, err := get(ctx, client, "read", path, false)
	if err != nil {
		return "", err
	}
	if secret == nil {
		return "", fmt.Errorf("read %s: %w", path, ErrNoSecret)
	}
	raw, ok := secret.Data["data"]
	if _, hasMeta := secret.Data["metadata"]; !ok || !hasMeta {
		return "", fmt.Errorf("read %s: the answer is not a KV version 2 secret: give the path with data/ after the mount of a KV version 2 engine", path)
	}
	if raw == nil {
		// KV v2 keeps the metadata of a deleted version and answers
		// data: null.
		return "", fmt.Errorf("read %s: its latest version is deleted: %w", path, ErrNoSecret)
	}
	data, ok := raw.(map[string]any)
	if !ok {
		return "", fmt.Errorf("read %s: unexpected data of type %T", path, raw)
	}
	v, ok := data[field]
	if !ok {
		return "", fmt.Errorf("read %s: field %q: %w (its fields: %s)", path, field, ErrNoField, fieldNames(data))
	}
	s, ok := v.(string)
	switch {
	case !ok:
		return "", fmt.Errorf("read %s: field %q is a %s, not a string: %w", path, field, jsonKind(v), ErrNoField)
	case s == "":
		return "", fmt.Errorf("read %s: field %q is empty: %w", path, field, ErrNoField)
	}
	return s, nil
}

// fieldNames lists a secret's field names for an error message, sorted and
// bounded, quoted so that odd names stay readable.
func fieldNames(data map[string]any) string {
	if len(data) == 0 {
		return "none"
	}
	names := make([]string, 0, len(data))
	for k := range data {
		names = append(names, fmt.Sprintf("%q", clip(k, 64)))
	}
	slices.Sort(names)
	more := ""
	if len(names) > maxFieldNames {
		more = fmt.Sprintf(" and %d more", len(names)-maxFieldNames)
		names = names[:maxFieldNames]
	}
	return strings.Join(names, ", ") + more
}

// jsonKind names the JSON type of a decoded value, never the value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "list"
	default:
		return "number"
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

// ReadField is the package's ReadField with the store's client, so with the
// identity (and policy) the store uses.
func (s *Store) ReadField(ctx context.Context, path, field string) (string, error) {
	return ReadField(ctx, s.client, path, field)
}
