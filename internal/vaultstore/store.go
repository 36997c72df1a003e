// Package vaultstore keeps UPS token records in HashiCorp Vault's KV v2
// engine, one secret per carrier and environment at
// <mount>/data/<prefix>/tokens/<carrier>/<environment>, and writes them with
// check-and-set so that replicas never overwrite each other's refresh
// tokens unknowingly.
package vaultstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/ups"
)

// Defaults for Options.
const (
	DefaultMount  = "secret"
	DefaultPrefix = "upsproxy"
)

// Options configure a Store.
type Options struct {
	// Client talks to Vault, already authenticated (see NewClient).
	Client *vaultapi.Client
	// Mount is the path of the KV version 2 engine; default "secret".
	Mount string
	// Prefix is the folder under the mount; default "upsproxy".
	Prefix string
	// Logger receives debug lines about reads and writes (never token
	// values); nil discards them.
	Logger *zap.Logger
}

// Store reads and writes token records. It is safe for concurrent use.
type Store struct {
	client *vaultapi.Client
	mount  string
	prefix string
	log    *zap.Logger
}

// New checks the options and returns a Store. It does not contact Vault;
// use Ping for that.
func New(opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("vaultstore: no vault client")
	}
	mount, err := cleanPath("mount", opts.Mount, DefaultMount)
	if err != nil {
		return nil, err
	}
	prefix, err := cleanPath("prefix", opts.Prefix, DefaultPrefix)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Store{client: opts.Client, mount: mount, prefix: prefix, log: log.Named("vaultstore")}, nil
}

// cleanPath trims surrounding slashes (users write "secret/" as often as
// "secret") and checks that every segment is path-safe.
func cleanPath(what, p, def string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		p = def
	}
	for seg := range strings.SplitSeq(p, "/") {
		if !validSegment(seg) {
			return "", fmt.Errorf("vaultstore: invalid vault %s %q: segment %q must be letters, digits, '_', '.' or '-'", what, p, seg)
		}
	}
	return p, nil
}

// tokensDir is the folder holding all records, relative to the mount.
func (s *Store) tokensDir() string { return s.prefix + "/tokens" }

func (s *Store) dataPath(carrier string, env ups.Environment) string {
	return s.mount + "/data/" + s.tokensDir() + "/" + carrier + "/" + string(env)
}

func (s *Store) metadataPath(carrier string, env ups.Environment) string {
	return s.mount + "/metadata/" + s.tokensDir() + "/" + carrier + "/" + string(env)
}

// Get reads the current record of carrier/env, with Version set.
// ErrNotFound when none is stored (or its latest version was deleted).
func (s *Store) Get(ctx context.Context, carrier string, env ups.Environment) (Record, error) {
	if err := validateKey(carrier, env); err != nil {
		return Record{}, err
	}
	rec, err := s.read(ctx, carrier, env)
	if err != nil {
		return Record{}, err
	}
	return rec, nil
}

// read is Get, except that for a record whose latest version was
// soft-deleted (`vault kv delete`) it returns ErrNotFound together with a
// Record carrying that version, which is what check-and-set must name to
// write the path again.
func (s *Store) read(ctx context.Context, carrier string, env ups.Environment) (Record, error) {
	path := s.dataPath(carrier, env)
	secret, err := s.get(ctx, "read", path, false)
	if err != nil {
		return Record{}, err
	}
	if secret == nil {
		return Record{}, fmt.Errorf("read %s: %w", path, ErrNotFound)
	}
	raw, ok := secret.Data["data"]
	if !ok {
		return Record{}, fmt.Errorf("read %s: the answer has no \"data\" field: is %q a KV version 2 mount?", path, s.mount)
	}
	version, err := versionOf(secret.Data["metadata"])
	if err != nil {
		return Record{}, fmt.Errorf("read %s: %w", path, err)
	}
	if raw == nil {
		// KV v2 keeps the metadata of a deleted version and answers 404 with
		// data null.
		return Record{Carrier: carrier, Environment: env, Version: version},
			fmt.Errorf("read %s: latest version %d is deleted: %w", path, version, ErrNotFound)
	}
	data, ok := raw.(map[string]any)
	if !ok {
		return Record{}, fmt.Errorf("read %s: unexpected data of type %T", path, raw)
	}
	rec, err := decodeRecord(data, carrier, env)
	if err != nil {
		return Record{}, fmt.Errorf("read %s: %w", path, err)
	}
	rec.Version = version
	return rec, nil
}

// get reads path (or lists it) and returns nil for a missing secret. The
// library's Logical().Read answers nil both for a missing secret and for a
// path no engine is mounted at; telling them apart matters, or a mistyped
// mount would look like "not logged in" everywhere, readiness included.
func (s *Store) get(ctx context.Context, op, path string, list bool) (*vaultapi.Secret, error) {
	return get(ctx, s.client, op, path, list)
}

// get is Store.get for any client (ReadField uses it too).
func get(ctx context.Context, client *vaultapi.Client, op, path string, list bool) (*vaultapi.Secret, error) {
	// The raw read does not apply the client's timeout by itself.
	if d := client.ClientTimeout(); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var params map[string][]string
	if list {
		// A GET with list=true is Vault's LIST, as Logical().List sends it.
		params = map[string][]string{"list": {"true"}}
	}
	resp, err := client.Logical().ReadRawWithDataWithContext(ctx, path, params)
	if resp != nil {
		defer resp.Body.Close()
	}
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		// Vault answers a missing secret with an empty error list, a missing
		// route with "no handler for route", and a deleted KV v2 version
		// with its metadata.
		var re *vaultapi.ResponseError
		if errors.As(err, &re) && len(re.Errors) > 0 {
			return nil, classify(op, path, err)
		}
		secret, perr := vaultapi.ParseSecret(resp.Body)
		switch {
		case errors.Is(perr, io.EOF):
			return nil, nil
		case perr != nil:
			return nil, fmt.Errorf("%s %s: unreadable answer: %w", op, path, perr)
		case secret == nil || secret.Data == nil:
			return nil, nil
		}
		return secret, nil
	}
	if err != nil {
		return nil, classify(op, path, err)
	}
	secret, err := vaultapi.ParseSecret(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: unreadable answer: %w", op, path, err)
	}
	if secret == nil || secret.Data == nil {
		return nil, nil
	}
	return secret, nil
}

// versionOf extracts "version" from KV v2 version metadata: the "metadata"
// field of a read, or the whole data of a write's answer.
func versionOf(md any) (int, error) {
	m, ok := md.(map[string]any)
	if !ok {
		return 0, fmt.Errorf("no version metadata in vault's answer (got %T): is this a KV version 2 mount?", md)
	}
	var v int64
	var err error
	switch n := m["version"].(type) {
	case json.Number:
		v, err = n.Int64()
	case float64:
		v = int64(n)
	default:
		return 0, fmt.Errorf("no version in vault's answer (got %T): is this a KV version 2 mount?", n)
	}
	if err != nil || v <= 0 || v > int64(^uint32(0)>>1) {
		return 0, fmt.Errorf("bad version %v in vault's answer", m["version"])
	}
	return int(v), nil
}

// Put writes rec with check-and-set on rec.Version: 0 means the record must
// not exist yet (a version deleted with `vault kv delete` counts as not
// existing), n means the current version must still be n. It returns the
// new version. ErrConflict when someone else wrote first: the caller must
// re-read (the other writer may hold a newer refresh token) rather than
// retry blindly.
//
// When the check-and-set fails but the stored record, at a newer version,
// is exactly rec, Put reports success with that version: that is what a
// write looks like whose answer was lost and which the Vault client retried.
// Records written by different replicas always differ (UpdatedBy, tokens).
func (s *Store) Put(ctx context.Context, rec Record) (int, error) {
	if err := validateRecord(rec); err != nil {
		return 0, err
	}
	data, err := encodeRecord(rec)
	if err != nil {
		return 0, err
	}
	path := s.dataPath(rec.Carrier, rec.Environment)
	version, err := s.write(ctx, path, data, rec.Version)
	if err == nil {
		s.log.Debug("stored token record", zap.String("carrier", rec.Carrier),
			zap.String("environment", string(rec.Environment)), zap.Int("version", version))
		return version, nil
	}
	if !errors.Is(err, ErrConflict) {
		return 0, err
	}
	return s.resolveConflict(ctx, rec, data, err)
}

// resolveConflict looks at what is stored after a check-and-set mismatch,
// for the two cases where the mismatch is not a real conflict.
func (s *Store) resolveConflict(ctx context.Context, rec Record, data map[string]any, conflict error) (int, error) {
	path := s.dataPath(rec.Carrier, rec.Environment)
	cur, err := s.read(ctx, rec.Carrier, rec.Environment)
	switch {
	case err == nil && cur.Version > rec.Version && sameContent(cur, rec):
		// The Vault client retries a write whose answer was lost (timeout,
		// 5xx from a load balancer); if the first attempt was applied, the
		// retry's check-and-set fails against our own write. Reporting a
		// conflict would make the caller think another replica holds the
		// refresh token, when the stored one is exactly ours.
		s.log.Debug("check-and-set mismatch was our own retried write", zap.String("carrier", rec.Carrier),
			zap.String("environment", string(rec.Environment)), zap.Int("version", cur.Version))
		return cur.Version, nil
	case rec.Version == 0 && errors.Is(err, ErrNotFound) && cur.Version > 0:
		// "Must not exist" also holds when the latest version was deleted
		// with `vault kv delete`: KV v2 then wants that version's number as
		// the check-and-set value. A write in between still fails.
		version, err := s.write(ctx, path, data, cur.Version)
		if err != nil {
			return 0, err
		}
		s.log.Debug("stored token record over a deleted version", zap.String("carrier", rec.Carrier),
			zap.String("environment", string(rec.Environment)), zap.Int("version", version))
		return version, nil
	default:
		return 0, conflict
	}
}

func (s *Store) write(ctx context.Context, path string, data map[string]any, cas int) (int, error) {
	body := map[string]any{
		"data":    data,
		"options": map[string]any{"cas": cas},
	}
	secret, err := s.client.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		return 0, classify("write", path, err)
	}
	if secret == nil {
		// KV version 1 answers 204 and ignores cas: the write landed, but
		// without any protection against concurrent writers.
		return 0, fmt.Errorf("write %s: vault returned no version: %q is not a KV version 2 mount, so check-and-set is impossible", path, s.mount)
	}
	version, err := versionOf(secret.Data)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return version, nil
}

// Delete removes every version and the metadata of carrier/env's record.
// ErrNotFound when there is none.
func (s *Store) Delete(ctx context.Context, carrier string, env ups.Environment) error {
	if err := validateKey(carrier, env); err != nil {
		return err
	}
	path := s.metadataPath(carrier, env)
	// Vault answers 204 to deleting a path that does not exist, so look
	// first: an admin who mistyped a carrier deserves to hear it.
	md, err := s.get(ctx, "read", path, false)
	if err != nil {
		return err
	}
	if md == nil {
		return fmt.Errorf("delete %s: %w", path, ErrNotFound)
	}
	if _, err := s.client.Logical().DeleteWithContext(ctx, path); err != nil {
		return classify("delete", path, err)
	}
	s.log.Debug("deleted token record", zap.String("carrier", carrier), zap.String("environment", string(env)))
	return nil
}

// List returns the keys of all stored records, sorted. It lists KV metadata,
// so a record whose latest version was deleted outside upsproxy (`vault kv
// delete`, not `vault kv metadata delete`) is listed and Get answers
// ErrNotFound for it. Paths under the prefix that are not records are
// skipped.
func (s *Store) List(ctx context.Context) ([]Key, error) {
	base := s.mount + "/metadata/" + s.tokensDir()
	carriers, err := s.listDir(ctx, base)
	if err != nil {
		return nil, err
	}
	var keys []Key
	for _, c := range carriers {
		carrier, isDir := strings.CutSuffix(c, "/")
		if !isDir || !validSegment(carrier) {
			s.log.Debug("ignoring unexpected path in vault", zap.String("path", base+"/"+c))
			continue
		}
		envs, err := s.listDir(ctx, base+"/"+carrier)
		if err != nil {
			return nil, err
		}
		for _, e := range envs {
			env := ups.Environment(e)
			if !env.Valid() {
				s.log.Debug("ignoring unexpected path in vault", zap.String("path", base+"/"+carrier+"/"+e))
				continue
			}
			keys = append(keys, Key{Carrier: carrier, Environment: env})
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Carrier != keys[j].Carrier {
			return keys[i].Carrier < keys[j].Carrier
		}
		return keys[i].Environment < keys[j].Environment
	})
	return keys, nil
}

// listDir lists the names in a KV metadata folder; none when it does not
// exist.
func (s *Store) listDir(ctx context.Context, path string) ([]string, error) {
	secret, err := s.get(ctx, "list", path, true)
	if err != nil {
		return nil, err
	}
	if secret == nil {
		return nil, nil
	}
	raw, ok := secret.Data["keys"].([]any)
	if !ok {
		return nil, fmt.Errorf("list %s: unexpected answer: no keys", path)
	}
	names := make([]string, 0, len(raw))
	for _, k := range raw {
		if name, ok := k.(string); ok {
			names = append(names, name)
		}
	}
	return names, nil
}

// Ping checks that Vault is reachable, initialized and unsealed
// (ErrUnavailable otherwise), and that the token may list the records
// (ErrPermissionDenied otherwise), which sys/health alone cannot tell.
func (s *Store) Ping(ctx context.Context) error {
	h, err := s.client.Sys().HealthWithContext(ctx)
	if err != nil {
		return classify("health check", "sys/health", err)
	}
	switch {
	case !h.Initialized:
		return &vaultError{msg: fmt.Sprintf("health check: %v: vault at %s is not initialized", ErrUnavailable, s.client.Address()), kind: ErrUnavailable}
	case h.Sealed:
		return &vaultError{msg: fmt.Sprintf("health check: %v: vault at %s is sealed", ErrUnavailable, s.client.Address()), kind: ErrUnavailable}
	}
	if _, err := s.listDir(ctx, s.mount+"/metadata/"+s.tokensDir()); err != nil {
		return err
	}
	return nil
}
